// The part of the history not archived yet: the end of each change topic partition, read from Kafka
// (committed data only) up to its last stable offset at the start of the read.

import { randomUUID } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { decodeCheckpoint, type Checkpoint } from '../capture/kafka-sink.js';
import {
  binlogSequence,
  checkpointsTopic,
  HEADER_SCHEMA,
  positionThrough,
  type Position,
  TidemarkError,
  type ChangeEvent,
  type Logger,
  type SchemaCatalog,
  type TableCodec,
} from '../core/index.js';

export interface TailRange {
  partition: number;
  /** First offset not in the archive. */
  from: bigint;
  /** Last stable offset when the restore began (exclusive). */
  to: bigint;
}

export interface TailEvent {
  partition: number;
  offset: bigint;
  codec: TableCodec;
  event: ChangeEvent;
}

/** The change topics under a prefix (not its checkpoints and schemas topics), sorted. */
export async function changeTopics(kafka: Kafka, prefix: string): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const head = `${prefix}.`;
    return (await admin.listTopics())
      .filter((t) => t.startsWith(head) && t !== `${head}checkpoints` && t !== `${head}schemas`)
      .sort();
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** End offsets (committed data) and earliest offsets of every partition of a topic. */
export async function topicOffsets(
  kafka: Kafka,
  topic: string,
): Promise<Map<number, { low: bigint; high: bigint }>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const topics = await admin.listTopics();
    if (!topics.includes(topic)) return new Map();
    const offsets = await admin.fetchTopicOffsets(topic);
    return new Map(offsets.map((o) => [o.partition, { low: BigInt(o.low), high: BigInt(o.high) }]));
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Reads the given ranges of a topic; events come back per partition in offset order. */
export async function readTail(o: {
  kafka: Kafka;
  catalog: SchemaCatalog;
  topic: string;
  ranges: readonly TailRange[];
  logger: Logger;
  timeoutMs?: number;
}): Promise<TailEvent[]> {
  const out: TailEvent[] = [];
  await readRanges({
    ...o,
    what: 'the unarchived end of',
    each: async (partition, offset, message) => {
      const version = message.headers?.[HEADER_SCHEMA]?.toString();
      if (!version || !message.value) {
        throw new TidemarkError(
          'EVENT_UNREADABLE',
          `${o.topic} partition ${partition} offset ${offset} is not a tidemark change event`,
        );
      }
      const codec = await o.catalog.codecFor(version);
      out.push({ partition, offset, codec, event: codec.decode(message.value) });
    },
  });
  return out.sort(
    (a, b) => a.partition - b.partition || (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0),
  );
}

/**
 * The checkpoint written last by any capture writing to the prefix (a standby shares the capture id; an
 * abandoned id would only hold restores back). Undefined when no capture has written one here.
 */
export async function latestCheckpoint(
  kafka: Kafka,
  prefix: string,
  logger: Logger,
): Promise<Checkpoint | undefined> {
  const topic = checkpointsTopic(prefix);
  const offsets = await topicOffsets(kafka, topic);
  const latest = new Map<string, Checkpoint>();
  await readRanges({
    kafka,
    topic,
    logger,
    what: 'the checkpoints in',
    ranges: [...offsets].map(([partition, r]) => ({ partition, from: r.low, to: r.high })),
    each: (_p, _o, message) => {
      if (message.headers?.['tidemark.record']?.toString() !== 'checkpoint' || !message.value)
        return Promise.resolve();
      latest.set(message.key?.toString() ?? '', decodeCheckpoint(message.value));
      return Promise.resolve();
    },
  });
  return [...latest.values()].reduce<Checkpoint | undefined>(
    (a, b) => (a === undefined || b.writtenMs > a.writtenMs ? b : a),
    undefined,
  );
}

/**
 * Where every capture writing to the prefix has committed up to: the position of its newest checkpoint (a
 * source transaction boundary, committed with the events before it). A change past it belongs to a
 * transaction capture is still sending, which no restore may include in part. Undefined when no capture has
 * written a checkpoint here.
 */
export async function committedFrontier(
  kafka: Kafka,
  prefix: string,
  logger: Logger,
): Promise<Position | undefined> {
  const newest = await latestCheckpoint(kafka, prefix, logger);
  if (!newest) return undefined;
  // During a capture's initial snapshot nothing of the snapshot may count yet.
  const frontier =
    newest.phase === 'snapshot' && newest.snapshot
      ? positionThrough(
          binlogSequence(newest.snapshot.binlogFile),
          Math.max(0, newest.snapshot.binlogOffset - 1),
        )
      : positionThrough(binlogSequence(newest.binlogFile), newest.binlogOffset);
  return frontier;
}

/** Reads ranges of a topic (committed data only) up to their ends, handing over each message in order. */
async function readRanges(o: {
  kafka: Kafka;
  topic: string;
  ranges: readonly TailRange[];
  logger: Logger;
  what: string;
  timeoutMs?: number;
  each: (partition: number, offset: bigint, message: KafkaMessage) => Promise<void>;
}): Promise<void> {
  const wanted = o.ranges.filter((r) => r.to > r.from);
  if (wanted.length === 0) return;
  const next = new Map(wanted.map((r) => [r.partition, r.from]));
  const end = new Map(wanted.map((r) => [r.partition, r.to]));
  const done = () => [...next].every(([p, n]) => n >= (end.get(p) as bigint));
  const consumer = o.kafka.consumer({
    groupId: `tidemark-restore-${randomUUID()}`,
    readUncommitted: false,
    maxBytesPerPartition: 8 * 1024 * 1024,
  });
  const timeoutMs = o.timeoutMs ?? 120_000;
  try {
    await consumer.connect();
    await consumer.subscribe({ topic: o.topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      let failed = false;
      const fail = (err: unknown) => {
        failed = true;
        clearInterval(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      };
      let lastProgress = Date.now();
      const timer = setInterval(() => {
        if (Date.now() - lastProgress > timeoutMs) {
          const behind = [...next]
            .filter(([p, n]) => n < (end.get(p) as bigint))
            .map(([p, n]) => `${p}@${n}`);
          fail(
            new TidemarkError(
              'KAFKA_UNREACHABLE',
              `reading ${o.what} ${o.topic} made no progress for ${timeoutMs / 1000} s (partitions at ${behind.join(', ')})`,
              { hint: 'check that Kafka is up, or restore from the archive alone with --archive-only' },
            ),
          );
        }
      }, 1000);
      // Batches of control records (transaction markers) never reach eachBatch; their end offsets do.
      consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
        const p = e.payload.partition;
        const last = BigInt(e.payload.lastOffset) + 1n;
        if (next.has(p) && last > (next.get(p) as bigint)) next.set(p, last);
        lastProgress = Date.now();
        if (done()) {
          clearInterval(timer);
          resolve();
        }
      });
      consumer
        .run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          eachBatch: async (payload) => {
            const { batch } = payload;
            const p = batch.partition;
            const stop = end.get(p);
            if (stop === undefined || failed) return;
            try {
              for (const message of batch.messages) {
                const offset = BigInt(message.offset);
                if (offset >= stop) break;
                if (offset < (next.get(p) as bigint)) continue;
                await o.each(p, offset, message);
                next.set(p, offset + 1n);
                payload.resolveOffset(message.offset);
              }
            } catch (err) {
              fail(err);
            }
          },
        })
        .catch(fail);
      for (const r of wanted)
        consumer.seek({ topic: o.topic, partition: r.partition, offset: r.from.toString() });
    });
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
}
