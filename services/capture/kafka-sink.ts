// Writes change events to Kafka in transactions, each ending with the checkpoint it makes safe, and reads
// the last checkpoint back at start. One transactional id per captured source fences any older instance.

import { randomUUID } from 'node:crypto';
import kafkajs, { type Admin, type Kafka } from 'kafkajs';
import { ProducerClient } from './producer-client.js';
import { FIELDS, type PackedBatch, type PlainMessage } from './producer-protocol.js';
import {
  avroType,
  changeTopic,
  checkpointsTopic,
  createKafka,
  ensureTopics,
  HEADER_SCHEMA,
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

export { chunkMessages } from './producer-protocol.js';

const HEADER_RECORD = 'tidemark.record';

export interface KafkaSinkOptions {
  kafka: KafkaConfig;
  captureId: string;
  logger: Logger;
}

/**
 * Writes a key's UTF-8 bytes at `pos` (the buffer has room for 3 bytes per UTF-16 unit) and returns their
 * length. Keys are short and mostly ASCII: copied by a loop rather than a call into the buffer's encoder.
 */
function writeKey(buf: Buffer, key: string, pos: number): number {
  const n = key.length;
  for (let i = 0; i < n; i++) {
    const c = key.charCodeAt(i);
    if (c >= 0x80) return buf.write(key, pos, 'utf8');
    buf[pos + i] = c;
  }
  return n;
}

/** Bytes of a non-negative length as a Kafka record varint (zigzag: twice the length, 7 bits a byte). */
function varintSize(length: number): number {
  const z = length * 2;
  return z < 0x80 ? 1 : z < 0x4000 ? 2 : z < 0x200000 ? 3 : z < 0x10000000 ? 4 : 5;
}

function writeVarint(buf: Buffer, at: number, length: number): number {
  let z = length * 2;
  while (z >= 0x80) {
    buf[at++] = (z & 0x7f) | 0x80;
    z = Math.floor(z / 0x80);
  }
  buf[at++] = z;
  return at;
}

/**
 * Records of the next transaction, packed into one buffer that moves to the producer thread at commit. Each
 * record is packed as the end of a Kafka record, from its key on (key, value and the schema header, with
 * their lengths), so the producer thread only puts its offset and time in front of it.
 */
export class BatchBuilder {
  private data = new ArrayBuffer(1 << 20);
  private bytes = Buffer.from(this.data);
  private used = 0;
  /** FIELDS numbers per record (see PackedBatch.index), grown by doubling. */
  private index = new Int32Array(FIELDS * 1024);
  private readonly topics: string[] = [];
  private readonly topicIndex = new Map<string, number>();
  /** The last topic looked up, which the next record almost always shares. */
  private lastTopic = { value: '', index: -1 };
  /** Each header value's encoded header block: count, then key and value with their lengths. */
  private readonly headerBlocks = new Map<string, Buffer>();
  count = 0;

  /** `headerName`: the one header every record carries, with the value given to add(). */
  constructor(private readonly headerName: string) {}

  /**
   * Appends one record whose value `write` puts at `pos` of the buffer (returning the end, or minus the
   * bytes missing). Returns the record's packed bytes (key, value, header and their lengths); a record over
   * `limit` is not kept.
   */
  add(
    topic: string,
    key: string,
    header: string,
    write: (buf: Buffer, pos: number) => number,
    limit: number,
  ): number {
    const block = this.headerBlock(header);
    for (;;) {
      const start = this.used;
      const head = 3 * key.length + 8;
      if (start + head + block.length + 256 > this.bytes.length) this.grow(head + block.length + 256);
      const bytes = this.bytes;
      // The key's length is one byte below 64 bytes; a longer key is moved up for its longer length.
      let keyStart = start + 1;
      const keyLength = writeKey(bytes, key, keyStart);
      if (keyLength >= 64) {
        bytes.copyWithin(start + varintSize(keyLength), keyStart, keyStart + keyLength);
        keyStart = start + varintSize(keyLength);
      }
      writeVarint(bytes, start, keyLength);
      // The value's length is two bytes from 64 to 8191 bytes; the value moves when it needs another size.
      const lengthAt = keyStart + keyLength;
      const valueStart = lengthAt + 2;
      const end = write(bytes, valueStart);
      if (end < 0) {
        this.grow(valueStart - start + (bytes.length - valueStart) - end + 8 + block.length);
        continue;
      }
      const valueLength = end - valueStart;
      const lengthSize = varintSize(valueLength);
      const tailEnd = end + lengthSize - 2 + block.length;
      if (tailEnd > bytes.length) {
        this.grow(tailEnd - start + 8);
        continue;
      }
      if (lengthSize !== 2) bytes.copyWithin(lengthAt + lengthSize, valueStart, end);
      bytes.set(block, writeVarint(bytes, lengthAt, valueLength) + valueLength);
      const packed = tailEnd - start;
      if (packed > limit) return packed;
      this.used = tailEnd;
      let i = this.count * FIELDS;
      if (i + FIELDS > this.index.length) {
        const grown = new Int32Array(this.index.length * 2);
        grown.set(this.index);
        this.index = grown;
      }
      const index = this.index;
      index[i++] = this.indexOf(this.lastTopic, this.topics, this.topicIndex, topic);
      index[i++] = keyStart;
      index[i++] = keyLength;
      index[i++] = start;
      index[i] = packed;
      this.count++;
      return packed;
    }
  }

  private headerBlock(value: string): Buffer {
    let block = this.headerBlocks.get(value);
    if (block === undefined) {
      const name = Buffer.from(this.headerName);
      const bytes = Buffer.from(value);
      block = Buffer.alloc(
        1 + varintSize(name.length) + name.length + varintSize(bytes.length) + bytes.length,
      );
      let at = writeVarint(block, 0, 1);
      at = writeVarint(block, at, name.length);
      at += name.copy(block, at);
      at = writeVarint(block, at, bytes.length);
      bytes.copy(block, at);
      this.headerBlocks.set(value, block);
    }
    return block;
  }

  get size(): number {
    return this.used;
  }

  /** Hands the packed records over and starts empty. */
  take(before: PackedBatch['before'], after: PackedBatch['after']): PackedBatch {
    const batch: PackedBatch = {
      data: this.data,
      index: this.index.slice(0, this.count * FIELDS),
      topics: [...this.topics],
      before,
      after,
    };
    // Room for a batch a quarter larger than this one: the next seldom needs to grow (a copy of all so far).
    this.data = new ArrayBuffer(Math.max(1 << 20, Math.ceil(this.used * 1.25)));
    this.bytes = Buffer.from(this.data);
    this.used = 0;
    this.topics.length = 0;
    this.topicIndex.clear();
    this.lastTopic = { value: '', index: -1 };
    this.count = 0;
    return batch;
  }

  private indexOf(
    last: { value: string; index: number },
    list: string[],
    map: Map<string, number>,
    value: string,
  ): number {
    if (value === last.value && last.index >= 0) return last.index;
    let i = map.get(value);
    if (i === undefined) {
      i = list.push(value) - 1;
      map.set(value, i);
    }
    last.value = value;
    last.index = i;
    return i;
  }

  /** Room for `n` more bytes after those in use (a record being packed starts again after it). */
  private grow(n: number): void {
    if (this.used + n <= this.data.byteLength) return;
    const grown = new ArrayBuffer(Math.max(this.data.byteLength * 2, this.used + n));
    const bytes = Buffer.from(grown);
    this.bytes.copy(bytes, 0, 0, this.used);
    this.data = grown;
    this.bytes = bytes;
  }
}

export class KafkaSink {
  private readonly kafkaClient: Kafka;
  private readonly producer: ProducerClient;
  private readonly admin: Admin;
  private readonly logger: Logger;
  private readonly knownTopics = new Set<string>();
  /** Smallest max.message.bytes of the change topics written: one partition's batch must stay under it. */
  private batchLimit = Number.MAX_SAFE_INTEGER;
  private readonly publishedSchemas = new Set<string>();
  private batch = new BatchBuilder(HEADER_SCHEMA);
  private pendingSchemas: PlainMessage[] = [];

  constructor(private readonly options: KafkaSinkOptions) {
    this.logger = options.logger;
    this.kafkaClient = createKafka(options.kafka, options.logger, `-capture-${options.captureId}`);
    // The transactional producer runs on its own thread, beside binlog decoding and Avro encoding.
    this.producer = new ProducerClient({
      kafka: options.kafka,
      clientId: `${options.kafka.clientId}-capture-${options.captureId}`,
      transactionalId: `tidemark-capture-${options.captureId}`,
      logger: options.logger,
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
    await this.producer.close().catch(() => undefined);
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

  /** The topic of each table codec's events, named once rather than for every event. */
  private readonly codecTopics = new WeakMap<TableCodec, string>();

  /** Buffers one event for the next transaction; its table's schema goes out first if not yet published. */
  add(codec: TableCodec, event: ChangeEvent): void {
    let topic = this.codecTopics.get(codec);
    if (topic === undefined) {
      topic = this.topicOf(event.source.db, event.source.table);
      this.codecTopics.set(codec, topic);
    }
    if (!this.publishedSchemas.has(codec.version)) {
      this.publishedSchemas.add(codec.version);
      this.pendingSchemas.push({
        key: `${event.source.db}.${event.source.table}:${codec.version}`,
        value: JSON.stringify(codec.schema),
        headers: { [HEADER_SCHEMA]: codec.version },
      });
    }
    const limit = this.batchLimit - 200;
    const length = this.batch.add(
      topic,
      event.key,
      codec.version,
      (buf, pos) => codec.encodeInto(event, buf, pos),
      limit,
    );
    if (length > limit) {
      throw new TidemarkError(
        'KAFKA_REJECTED',
        `a change of ${event.source.db}.${event.source.table} at key ${event.key} is ${length} bytes, more than its Kafka topic accepts (max.message.bytes ${this.batchLimit})`,
        {
          hint: `raise kafka.maxMessageBytes and the topic's max.message.bytes (kafka-configs --alter --entity-type topics --entity-name ${topic} --add-config max.message.bytes=<bytes>); nothing was skipped`,
        },
      );
    }
  }

  get bufferedEvents(): number {
    return this.batch.count;
  }

  get bufferedBytes(): number {
    return this.batch.size;
  }

  /**
   * Sends everything buffered and the checkpoint in one Kafka transaction. Either all of it becomes visible to
   * read_committed consumers or none of it does. Resolves once the brokers acknowledged the commit.
   */
  async commit(checkpoint: Checkpoint | undefined): Promise<void> {
    if (this.batch.count === 0 && checkpoint === undefined && this.pendingSchemas.length === 0) return;
    // Take the buffers now, so the next batch can be built while this transaction is in flight.
    const schemas = this.pendingSchemas;
    this.pendingSchemas = [];
    const after = checkpoint
      ? [
          {
            topic: checkpointsTopic(this.prefix),
            messages: [
              {
                key: checkpoint.captureId,
                value: encodeCheckpoint(checkpoint),
                headers: { [HEADER_RECORD]: 'checkpoint' },
              },
            ],
          },
        ]
      : [];
    const before = schemas.length > 0 ? [{ topic: schemasTopic(this.prefix), messages: schemas }] : [];
    try {
      await this.producer.commit(this.batch.take(before, after), sendChunkBytes(this.batchLimit));
    } catch (err) {
      // Schemas of an aborted transaction were never published.
      for (const m of schemas) this.publishedSchemas.delete(m.headers[HEADER_SCHEMA] as string);
      throw new TidemarkError('KAFKA_UNREACHABLE', `Kafka transaction failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /** Drops what is buffered (after a failure, capture restarts from its last checkpoint). */
  discard(): void {
    this.batch = new BatchBuilder(HEADER_SCHEMA);
    for (const m of this.pendingSchemas) this.publishedSchemas.delete(m.headers[HEADER_SCHEMA] as string);
    this.pendingSchemas = [];
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
    const probe = {
      topic,
      messages: [{ key: probeKey, value: nonce, headers: { [HEADER_RECORD]: 'probe' } }],
    };
    await this.producer.commit(
      new BatchBuilder(HEADER_SCHEMA).take([], [probe]),
      sendChunkBytes(this.batchLimit),
    );

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
