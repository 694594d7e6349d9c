// Writes change events to Kafka in transactions, each ending with the checkpoint it makes safe, and reads
// the last checkpoint back at start. One transactional id per captured source fences any older instance.

import { randomUUID } from 'node:crypto';
import kafkajs, { Partitioners, type Admin, type Kafka, type Message, type Producer } from 'kafkajs';
import {
  avroType,
  changeTopic,
  checkpointsTopic,
  createKafka,
  ensureTopics,
  loadSchemaFile,
  schemasTopic,
  TidemarkError,
  type AvroSchema,
  type ChangeEvent,
  type KafkaConfig,
  type Logger,
  type TableCodec,
} from '../core/index.js';

export interface SnapshotProgress {
  binlogFile: string;
  binlogOffset: number;
  tables: string[];
  completed: boolean;
}

export interface Checkpoint {
  captureId: string;
  phase: 'snapshot' | 'streaming';
  binlogFile: string;
  binlogOffset: number;
  gtidSet: string | null;
  tsMs: number;
  writtenMs: number;
  snapshot: SnapshotProgress | null;
}

interface CheckpointRecord {
  capture_id: string;
  phase: 'snapshot' | 'streaming';
  binlog_file: string;
  binlog_offset: bigint;
  gtid_set: string | null;
  ts_ms: bigint;
  written_ms: bigint;
  snapshot: { binlog_file: string; binlog_offset: bigint; tables: string[]; completed: boolean } | null;
}

const checkpointType = avroType(loadSchemaFile('checkpoint') as AvroSchema);

export function encodeCheckpoint(c: Checkpoint): Buffer {
  const record: CheckpointRecord = {
    capture_id: c.captureId,
    phase: c.phase,
    binlog_file: c.binlogFile,
    binlog_offset: BigInt(c.binlogOffset),
    gtid_set: c.gtidSet,
    ts_ms: BigInt(c.tsMs),
    written_ms: BigInt(c.writtenMs),
    snapshot: c.snapshot && {
      binlog_file: c.snapshot.binlogFile,
      binlog_offset: BigInt(c.snapshot.binlogOffset),
      tables: c.snapshot.tables,
      completed: c.snapshot.completed,
    },
  };
  return checkpointType.toBuffer(record);
}

export function decodeCheckpoint(buf: Buffer): Checkpoint {
  const r = checkpointType.fromBuffer(buf) as CheckpointRecord;
  return {
    captureId: r.capture_id,
    phase: r.phase,
    binlogFile: r.binlog_file,
    binlogOffset: Number(r.binlog_offset),
    gtidSet: r.gtid_set,
    tsMs: Number(r.ts_ms),
    writtenMs: Number(r.written_ms),
    snapshot: r.snapshot && {
      binlogFile: r.snapshot.binlog_file,
      binlogOffset: Number(r.snapshot.binlog_offset),
      tables: r.snapshot.tables,
      completed: r.snapshot.completed,
    },
  };
}

/**
 * Bytes of records per request inside a transaction. Records of one partition travel as one batch, capped
 * by the topic's max.message.bytes; half of it leaves room for batch overhead, and 8 MiB keeps requests short.
 */
function sendChunkBytes(maxMessageBytes: number): number {
  return Math.max(64 * 1024, Math.min(8 * 1024 * 1024, Math.floor(maxMessageBytes / 2)));
}

/** The max.message.bytes each topic really has. */
async function topicMessageLimits(admin: Admin, topics: string[]): Promise<Map<string, number>> {
  const described = await admin.describeConfigs({
    includeSynonyms: false,
    resources: topics.map((name) => ({
      type: kafkajs.ConfigResourceTypes.TOPIC,
      name,
      configNames: ['max.message.bytes'],
    })),
  });
  return new Map(
    described.resources.map((r) => [
      r.resourceName,
      Number(r.configEntries.find((c) => c.configName === 'max.message.bytes')?.configValue ?? 1048588),
    ]),
  );
}

function messageBytes(m: Message): number {
  let n = 64 + (m.key?.length ?? 0) + ((m.value as Buffer | null)?.length ?? 0);
  for (const [k, v] of Object.entries(m.headers ?? {})) n += k.length + String(v).length;
  return n;
}

/** Splits topic messages into groups of about `limit` bytes, keeping the order within each topic. */
export function chunkMessages(
  topicMessages: { topic: string; messages: Message[] }[],
  limit: number,
): { topic: string; messages: Message[] }[][] {
  const chunks: { topic: string; messages: Message[] }[][] = [];
  let current: { topic: string; messages: Message[] }[] = [];
  let bytes = 0;
  for (const { topic, messages } of topicMessages) {
    let slice: Message[] = [];
    current.push({ topic, messages: slice });
    for (const m of messages) {
      const size = messageBytes(m);
      if (bytes > 0 && bytes + size > limit) {
        chunks.push(current);
        slice = [];
        current = [{ topic, messages: slice }];
        bytes = 0;
      }
      slice.push(m);
      bytes += size;
    }
  }
  const last = current.filter((t) => t.messages.length > 0);
  if (last.length > 0) chunks.push(last);
  return chunks.map((c) => c.filter((t) => t.messages.length > 0));
}

export const HEADER_SCHEMA = 'tidemark.schema';
const HEADER_RECORD = 'tidemark.record';

export interface KafkaSinkOptions {
  kafka: KafkaConfig;
  captureId: string;
  logger: Logger;
}

export class KafkaSink {
  private readonly kafkaClient: Kafka;
  private readonly producer: Producer;
  private readonly admin: Admin;
  private readonly logger: Logger;
  private readonly knownTopics = new Set<string>();
  /** Smallest max.message.bytes of the change topics written: one partition's batch must stay under it. */
  private batchLimit = Number.MAX_SAFE_INTEGER;
  private readonly publishedSchemas = new Set<string>();
  private pending = new Map<string, Message[]>();
  private pendingSchemas: Message[] = [];
  private pendingCount = 0;
  private pendingBytes = 0;

  constructor(private readonly options: KafkaSinkOptions) {
    this.logger = options.logger;
    this.kafkaClient = createKafka(options.kafka, options.logger, `-capture-${options.captureId}`);
    this.producer = this.kafkaClient.producer({
      transactionalId: `tidemark-capture-${options.captureId}`,
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
      transactionTimeout: 60_000,
    });
    this.admin = this.kafkaClient.admin();
  }

  get prefix(): string {
    return this.options.kafka.topicPrefix;
  }

  /** Connects; an older producer with the same transactional id is fenced and its open transaction aborted. */
  async connect(): Promise<void> {
    try {
      await this.admin.connect();
      await ensureTopics(this.admin, [
        {
          topic: checkpointsTopic(this.prefix),
          partitions: 1,
          replicationFactor: this.options.kafka.replicationFactor,
          compacted: true,
        },
        {
          topic: schemasTopic(this.prefix),
          partitions: 1,
          replicationFactor: this.options.kafka.replicationFactor,
          compacted: true,
        },
      ]);
      await this.producer.connect();
    } catch (err) {
      if (err instanceof TidemarkError) throw err;
      throw new TidemarkError(
        'KAFKA_UNREACHABLE',
        `cannot connect to Kafka at ${this.options.kafka.brokers.join(',')}: ${(err as Error).message}`,
        {
          cause: err,
          hint: 'check kafka.brokers and that the brokers are up',
        },
      );
    }
  }

  async close(): Promise<void> {
    await this.producer.disconnect().catch(() => undefined);
    await this.admin.disconnect().catch(() => undefined);
  }

  /** Makes sure the change topics of these tables exist (created with the configured partitions). */
  async prepareTables(tables: readonly { db: string; table: string }[]): Promise<void> {
    const topics = tables
      .map((t) => changeTopic(this.prefix, t.db, t.table))
      .filter((t) => !this.knownTopics.has(t));
    if (topics.length === 0) return;
    await ensureTopics(
      this.admin,
      topics.map((topic) => ({
        topic,
        partitions: this.options.kafka.partitions,
        replicationFactor: this.options.kafka.replicationFactor,
        maxMessageBytes: this.options.kafka.maxMessageBytes,
      })),
    );
    // Topics created elsewhere may have a smaller limit than tidemark would have set: honour the real one.
    for (const [topic, limit] of await topicMessageLimits(this.admin, topics)) {
      this.knownTopics.add(topic);
      this.batchLimit = Math.min(this.batchLimit, limit);
    }
  }

  topicOf(db: string, table: string): string {
    return changeTopic(this.prefix, db, table);
  }

  /** Buffers one event for the next transaction; its table's schema goes out first if not yet published. */
  add(codec: TableCodec, event: ChangeEvent): void {
    const topic = this.topicOf(event.source.db, event.source.table);
    if (!this.publishedSchemas.has(codec.version)) {
      this.publishedSchemas.add(codec.version);
      this.pendingSchemas.push({
        key: `${event.source.db}.${event.source.table}:${codec.version}`,
        value: JSON.stringify(codec.schema),
        headers: { [HEADER_SCHEMA]: codec.version },
      });
    }
    const value = codec.encode(event);
    if (value.length + event.key.length + 200 > this.batchLimit) {
      throw new TidemarkError(
        'KAFKA_REJECTED',
        `a change of ${event.source.db}.${event.source.table} at key ${event.key} is ${value.length} bytes, more than its Kafka topic accepts (max.message.bytes ${this.batchLimit})`,
        {
          hint: `raise kafka.maxMessageBytes and the topic's max.message.bytes (kafka-configs --alter --entity-type topics --entity-name ${topic} --add-config max.message.bytes=<bytes>); nothing was skipped`,
        },
      );
    }
    let messages = this.pending.get(topic);
    if (!messages) {
      messages = [];
      this.pending.set(topic, messages);
    }
    messages.push({ key: event.key, value, headers: this.headersFor(codec.version) });
    this.pendingCount++;
    this.pendingBytes += value.length + event.key.length;
  }

  /** One shared, pre-encoded header object per schema version: encoding it per record is costly. */
  private headersFor(version: string): Message['headers'] {
    let headers = this.headerCache.get(version);
    if (!headers) {
      headers = { [HEADER_SCHEMA]: Buffer.from(version) };
      this.headerCache.set(version, headers);
    }
    return headers;
  }

  private readonly headerCache = new Map<string, Message['headers']>();

  get bufferedEvents(): number {
    return this.pendingCount;
  }

  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  /**
   * Sends everything buffered and the checkpoint in one Kafka transaction. Either all of it becomes visible to
   * read_committed consumers or none of it does. Resolves once the brokers acknowledged the commit.
   */
  async commit(checkpoint: Checkpoint | undefined): Promise<void> {
    if (this.pendingCount === 0 && checkpoint === undefined && this.pendingSchemas.length === 0) return;
    // Take the buffers now, so the next batch can be built while this transaction is in flight.
    const topicMessages = [...this.pending].map(([topic, messages]) => ({ topic, messages }));
    const schemas = this.pendingSchemas;
    if (schemas.length > 0) topicMessages.unshift({ topic: schemasTopic(this.prefix), messages: schemas });
    if (checkpoint) {
      topicMessages.push({
        topic: checkpointsTopic(this.prefix),
        messages: [
          {
            key: checkpoint.captureId,
            value: encodeCheckpoint(checkpoint),
            headers: { [HEADER_RECORD]: 'checkpoint' },
          },
        ],
      });
    }
    this.pending = new Map();
    this.pendingSchemas = [];
    this.pendingCount = 0;
    this.pendingBytes = 0;
    const transaction = await this.producer.transaction();
    try {
      // Sent in chunks that each stay under the topics' batch limit, all inside the same transaction.
      for (const chunk of chunkMessages(topicMessages, sendChunkBytes(this.batchLimit))) {
        await transaction.sendBatch({ topicMessages: chunk });
      }
      await transaction.commit();
    } catch (err) {
      await transaction.abort().catch(() => undefined);
      // Schemas of an aborted transaction were never published.
      for (const m of schemas) this.publishedSchemas.delete(String(m.headers?.[HEADER_SCHEMA]));
      throw new TidemarkError('KAFKA_UNREACHABLE', `Kafka transaction failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /** Drops what is buffered (after a failure, capture restarts from its last checkpoint). */
  discard(): void {
    this.pending = new Map();
    for (const m of this.pendingSchemas) this.publishedSchemas.delete(String(m.headers?.[HEADER_SCHEMA]));
    this.pendingSchemas = [];
    this.pendingCount = 0;
    this.pendingBytes = 0;
  }

  /**
   * The last checkpoint this capture committed, or undefined on first start. A probe record with a fresh
   * nonce is committed first; reading up to it guarantees every checkpoint committed before was seen.
   * The reader's group never commits offsets, so it always starts from the beginning of the topic.
   */
  async readCheckpoint(): Promise<Checkpoint | undefined> {
    const topic = checkpointsTopic(this.prefix);
    const nonce = randomUUID();
    const probeKey = `probe:${this.options.captureId}`;
    const transaction = await this.producer.transaction();
    await transaction.send({
      topic,
      messages: [{ key: probeKey, value: nonce, headers: { [HEADER_RECORD]: 'probe' } }],
    });
    await transaction.commit();

    const consumer = this.kafkaClient.consumer({
      groupId: `tidemark-capture-${this.options.captureId}-checkpoint-reader`,
      readUncommitted: false,
      allowAutoTopicCreation: false,
    });
    let latest: Checkpoint | undefined;
    try {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new TidemarkError(
                'KAFKA_UNREACHABLE',
                `reading the checkpoint from ${topic} did not finish within 60 s`,
              ),
            ),
          60_000,
        );
        consumer
          .run({
            autoCommit: false,
            eachMessage: ({ message }) => {
              const kind = message.headers?.[HEADER_RECORD]?.toString();
              if (
                kind === 'probe' &&
                message.key?.toString() === probeKey &&
                message.value?.toString() === nonce
              ) {
                clearTimeout(timer);
                resolve();
              } else if (
                kind === 'checkpoint' &&
                message.key?.toString() === this.options.captureId &&
                message.value
              ) {
                latest = decodeCheckpoint(message.value);
              }
              return Promise.resolve();
            },
          })
          .catch(reject);
      });
    } finally {
      await consumer.disconnect().catch(() => undefined);
    }
    this.logger.info(
      { checkpoint: latest },
      latest ? 'resuming from checkpoint' : 'no checkpoint yet: first start',
    );
    return latest;
  }
}
