// One consumer group over the change topics (read_committed), handing each partition's batches to a sink:
// the hot replica or the cold archive. A failing store is retried with backoff while the group stays alive;
// an event that cannot be read stops its partition, loudly, and nothing else.

import type { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import {
  checkpointsTopic,
  isTidemarkError,
  schemasTopic,
  TidemarkError,
  type Logger,
  sleep,
} from '../core/index.js';
import type { TierMetrics } from './metrics.js';

/** How long a stop waits for the consumer to finish its batch and leave the group. */
const DISCONNECT_GRACE_MS = 15_000;

export interface PartitionBatch {
  topic: string;
  partition: number;
  /** Data records only: Kafka drops aborted transactions and control records for read_committed. */
  messages: KafkaMessage[];
  highWatermark: bigint;
}

export interface Committed {
  /** The next offset to read; -1 when the group never committed on this partition. */
  offset: bigint;
  metadata: string | null;
}

export interface PartitionContext {
  /** Increases whenever the group rebalances; state kept from an older generation is stale. */
  readonly generation: number;
  heartbeat(): Promise<void>;
  /** Commits the group's offset of this partition (with metadata), refused once the partition moved away. */
  commit(offset: bigint, metadata?: string | null): Promise<void>;
  /** What the group last committed for this partition, read from Kafka. */
  committed(): Promise<Committed>;
  /** The first offset still in the partition (older ones were deleted by retention). */
  lowWatermark(): Promise<bigint>;
  isStale(): boolean;
}

export interface TierSink {
  /** Handles one partition's batch; resolves once it is durable in the store as far as the sink commits. */
  apply(batch: PartitionBatch, ctx: PartitionContext): Promise<void>;
  /** Called every second while the group runs (idle flushes, eviction). */
  tick?(ctxFor: (topic: string, partition: number) => PartitionContext | undefined): Promise<void>;
  close(): Promise<void>;
}

export interface TierConsumerOptions {
  kafka: Kafka;
  /** Consumer group id. */
  groupId: string;
  /** Short name for logs and metrics: hot or cold. */
  name: string;
  topicPrefix: string;
  /** Whether a table (`db.table` as in the topic name) is tiered. */
  selected: (table: string) => boolean;
  sink: TierSink;
  logger: Logger;
  metrics: TierMetrics;
  retry: { minMs: number; maxMs: number };
  maxBytesPerPartition: number;
  topicRefreshMs: number;
  sessionTimeoutMs: number;
}

export class TierConsumer {
  private consumer: Consumer | undefined;
  private admin: Admin | undefined;
  private generation = 0;
  private readonly assigned = new Map<string, Set<number>>();
  private readonly stopped = new Map<string, string>();
  private running = false;
  /** Problems a health check reports: stopped partitions, the last retried failure. */
  lastFailure: string | undefined;
  /** Since when batches, and the periodic work (idle flushes, eviction), have kept failing. */
  /** Per partition (`topic[partition]`) this member holds, since when its batch has kept failing. */
  private readonly batchFailingSince = new Map<string, number>();
  private tickFailingSince: number | undefined;
  /**
   * Per partition, the batch the sink is applying. kafkajs fetches again only once every batch of a fetch
   * was handed back, so a batch is handed back as soon as its work started: the next fetch, and the other
   * partitions, overlap with the store's write. The partition's next batch waits for it.
   */
  private readonly inflight = new Map<string, Promise<void>>();
  /**
   * Per partition, a batch given up on a Kafka error (a rebalance, a lost session, a commit that could not
   * be made) in this group generation. kafkajs must rejoin or restart and read the partition again from its
   * committed offset; the partition's next batch of the same generation throws the error to kafkajs instead
   * of being applied without this one.
   */
  private readonly abandoned = new Map<string, { generation: number; err: Error }>();

  /**
   * Since when writes to the store have kept failing: the oldest partition still failing, or the periodic
   * work (undefined: none is). One partition stuck counts, whatever the others do.
   */
  get failingSince(): number | undefined {
    const times = [...this.batchFailingSince.values()];
    if (this.tickFailingSince !== undefined) times.push(this.tickFailingSince);
    return times.length === 0 ? undefined : Math.min(...times);
  }

  constructor(private readonly o: TierConsumerOptions) {}

  get stoppedPartitions(): ReadonlyMap<string, string> {
    return this.stopped;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Change topics of the selected tables that exist now, sorted. */
  async discoverTopics(admin: Admin): Promise<string[]> {
    const prefix = `${this.o.topicPrefix}.`;
    const internal = new Set([checkpointsTopic(this.o.topicPrefix), schemasTopic(this.o.topicPrefix)]);
    return (await admin.listTopics())
      .filter((t) => t.startsWith(prefix) && !internal.has(t) && this.o.selected(t.slice(prefix.length)))
      .sort();
  }

  /** Runs the group until the signal aborts; restarts it when new change topics appear. */
  async run(signal: AbortSignal): Promise<void> {
    const log = this.o.logger;
    this.admin = this.o.kafka.admin();
    await this.connectAdmin(signal);
    let backoff = this.o.retry.minMs;
    try {
      while (!signal.aborted) {
        let topics: string[];
        try {
          topics = await this.discoverTopics(this.admin);
        } catch (err) {
          log.warn({ err, retryInMs: backoff }, 'cannot list Kafka topics; retrying');
          await sleep(backoff, signal);
          backoff = Math.min(backoff * 2, this.o.retry.maxMs);
          continue;
        }
        backoff = this.o.retry.minMs;
        if (topics.length === 0) {
          log.info(`no change topics under ${this.o.topicPrefix}. yet; waiting for capture to create them`);
          await sleep(this.o.topicRefreshMs, signal);
          continue;
        }
        const changed = new AbortController();
        const onAbort = () => changed.abort();
        signal.addEventListener('abort', onAbort);
        const watcher = this.watchTopics(topics, changed);
        try {
          await this.consume(topics, changed.signal);
        } finally {
          signal.removeEventListener('abort', onAbort);
          changed.abort();
          await watcher;
          log.debug('stopping: topic watcher done');
        }
      }
    } finally {
      await this.o.sink.close();
      log.debug('stopping: sink closed');
      await this.admin.disconnect().catch(() => undefined);
      log.debug('stopping: admin client closed');
    }
  }

  private async connectAdmin(signal: AbortSignal): Promise<void> {
    let backoff = this.o.retry.minMs;
    while (!signal.aborted) {
      try {
        await this.admin?.connect();
        return;
      } catch (err) {
        this.o.logger.warn({ err, retryInMs: backoff }, 'cannot reach Kafka; retrying');
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, this.o.retry.maxMs);
      }
    }
  }

  private async watchTopics(current: string[], changed: AbortController): Promise<void> {
    while (!changed.signal.aborted) {
      await sleep(this.o.topicRefreshMs, changed.signal);
      if (changed.signal.aborted || !this.admin) return;
      try {
        const now = await this.discoverTopics(this.admin);
        if (now.join('\n') !== current.join('\n')) {
          this.o.logger.info({ topics: now }, 'change topics changed; rejoining the group with them');
          changed.abort();
        }
      } catch {
        // Kafka unreachable: the consumer itself reports it.
      }
    }
  }

  private async consume(topics: string[], signal: AbortSignal): Promise<void> {
    const { kafka, groupId, logger, sink } = this.o;
    const consumer = kafka.consumer({
      groupId,
      readUncommitted: false,
      maxBytesPerPartition: this.o.maxBytesPerPartition,
      sessionTimeout: this.o.sessionTimeoutMs,
      maxWaitTimeInMs: 1_000,
      heartbeatInterval: 3_000,
      retry: {
        retries: Number.MAX_SAFE_INTEGER,
        initialRetryTime: this.o.retry.minMs,
        maxRetryTime: this.o.retry.maxMs,
      },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      this.generation += 1;
      this.assigned.clear();
      this.batchFailingSince.clear();
      this.abandoned.clear();
      for (const [topic, partitions] of Object.entries(e.payload.memberAssignment)) {
        this.assigned.set(topic, new Set(partitions));
      }
      logger.info({ group: groupId, assignment: e.payload.memberAssignment }, 'joined the consumer group');
    });
    consumer.on(consumer.events.CRASH, (e) => {
      this.lastFailure = String(e.payload.error?.message ?? e.payload.error);
      logger.warn({ err: e.payload.error, group: groupId }, 'consumer failed; restarting it');
    });
    let tickFailing = false;
    const ticker = setInterval(() => {
      if (!sink.tick) return;
      sink
        .tick((topic, partition) => this.contextFor(topic, partition))
        .then(() => {
          tickFailing = false;
          this.tickFailingSince = undefined;
        })
        .catch((err: unknown) => {
          // Once per failure streak: the store being down is already reported by the batches.
          if (!tickFailing) logger.warn({ err }, 'periodic tiering work failed; retrying every second');
          tickFailing = true;
          this.tickFailingSince ??= Date.now();
        });
    }, 1000);
    try {
      await consumer.connect();
      await consumer.subscribe({ topics, fromBeginning: true });
      this.running = true;
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 4,
        eachBatch: (payload) => this.eachBatch(payload, signal),
      });
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        signal.addEventListener('abort', () => resolve());
      });
    } finally {
      this.running = false;
      clearInterval(ticker);
      logger.debug('stopping: disconnecting the consumer');
      // kafkajs waits for the batch in hand; a stop must not wait forever for it. Leaving without it loses
      // nothing: offsets are committed only after the stores have the data, so those events are read again.
      const left = await withinGrace(consumer.disconnect().catch(() => undefined));
      if (left) logger.debug('stopping: consumer disconnected');
      else {
        logger.warn(
          { group: groupId, waitedMs: DISCONNECT_GRACE_MS },
          'the consumer did not leave its group in time; stopping without it (its uncommitted events are read again on the next start)',
        );
      }
      // Batches still being applied finish, or give up now that the stop is signalled. A stop does not wait
      // for them beyond the grace period: nothing they did not commit is lost, it is read again.
      if (this.inflight.size > 0) {
        logger.debug({ batches: this.inflight.size }, 'stopping: waiting for the batches being applied');
        if (!(await withinGrace(this.drain()))) {
          logger.warn(
            { group: groupId, waitedMs: DISCONNECT_GRACE_MS, partitions: [...this.inflight.keys()] },
            'batches were still being applied at the end of the grace period; stopping without them (their events are read again on the next start)',
          );
        }
      }
      this.consumer = undefined;
    }
  }

  private contextFor(
    topic: string,
    partition: number,
    payload?: Pick<EachBatchPayload, 'heartbeat' | 'isStale' | 'isRunning'>,
  ): PartitionContext | undefined {
    const consumer = this.consumer;
    const admin = this.admin;
    if (!consumer || !admin || !this.assigned.get(topic)?.has(partition)) return undefined;
    const generation = this.generation;
    const stale = () =>
      generation !== this.generation ||
      !this.assigned.get(topic)?.has(partition) ||
      (payload !== undefined && (payload.isStale() || !payload.isRunning()));
    return {
      generation,
      heartbeat: () => (payload ? payload.heartbeat() : Promise.resolve()),
      isStale: stale,
      commit: async (offset, metadata = null) => {
        if (stale()) throw new TidemarkError('INTERNAL', `${topic}[${partition}] moved to another member`);
        await consumer.commitOffsets([{ topic, partition, offset: offset.toString(), metadata }]);
      },
      committed: async () => {
        const [entry] = await admin.fetchOffsets({ groupId: this.o.groupId, topics: [topic] });
        const p = entry?.partitions.find((x) => x.partition === partition);
        return { offset: BigInt(p?.offset ?? '-1'), metadata: p?.metadata ?? null };
      },
      lowWatermark: async () => {
        const offsets = await admin.fetchTopicOffsets(topic);
        return BigInt(offsets.find((x) => x.partition === partition)?.low ?? '0');
      },
    };
  }

  private async eachBatch(payload: EachBatchPayload, signal: AbortSignal): Promise<void> {
    const { batch } = payload;
    const { topic, partition } = batch;
    const id = `${topic}[${partition}]`;
    if (batch.isEmpty() || this.stopped.has(id)) return;
    // In order: the batch before this one is done (applied, or given up because the partition moved on).
    await this.inflight.get(id);
    if (this.stopped.has(id) || signal.aborted) return;
    const given = this.abandoned.get(id);
    if (given) {
      this.abandoned.delete(id);
      if (given.generation === this.generation) throw given.err;
    }
    const ctx = this.contextFor(topic, partition, payload);
    if (!ctx) return;
    const work: PartitionBatch = {
      topic,
      partition,
      messages: batch.messages,
      highWatermark: BigInt(batch.highWatermark),
    };
    // The next fetch starts from after this batch; the group's committed offset moves only when the sink
    // commits, once the data is in the store (a crash, a stop or a rebalance reads the batch again).
    payload.resolveOffset(batch.lastOffset());
    // A slow store must not cost the partition: keep the membership alive while the sink works.
    const beat = setInterval(() => {
      if (!signal.aborted) void payload.heartbeat().catch(() => undefined);
    }, 2000);
    const running = this.applyWithRetry(payload, work, ctx, signal)
      .catch((err: unknown) => {
        // Not expected (applyWithRetry keeps and retries every failure of the store): the partition stops
        // rather than let a later batch be applied without this one.
        this.stopPartition(
          payload,
          id,
          new TidemarkError('INTERNAL', `applying a batch failed unexpectedly: ${(err as Error).message}`, {
            cause: err,
          }),
        );
      })
      .finally(() => {
        clearInterval(beat);
        if (this.inflight.get(id) === running) this.inflight.delete(id);
      });
    this.inflight.set(id, running);
  }

  /** Waits for the batches the sink is still applying. */
  private async drain(): Promise<void> {
    while (this.inflight.size > 0) await Promise.all([...this.inflight.values()]);
  }

  private async applyWithRetry(
    payload: EachBatchPayload,
    work: PartitionBatch,
    ctx: PartitionContext,
    signal: AbortSignal,
  ): Promise<void> {
    const { batch } = payload;
    const { topic, partition } = work;
    const id = `${topic}[${partition}]`;
    let backoff = this.o.retry.minMs;
    // A partition given up (stopping, moved to another member) no longer counts as failing here.
    const leave = () => {
      this.batchFailingSince.delete(id);
    };
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted || ctx.isStale()) return leave();
      try {
        await this.o.sink.apply(work, ctx);
        break;
      } catch (err) {
        if (signal.aborted || ctx.isStale()) return leave();
        if (isTidemarkError(err) && err.code === 'EVENT_UNREADABLE') {
          this.stopPartition(payload, id, err);
          return;
        }
        // Kafka's own errors (a rebalance, a lost session, a commit refused) are kafkajs's to mend: it
        // rejoins or restarts and the partition is read again from its committed offset. Retrying here could
        // wait forever (kafkajs rejoins only once this fetch's batches are done), so the batch is given up
        // and the partition's next batch hands the error to kafkajs.
        if (err instanceof Error && err.name.startsWith('KafkaJS')) {
          leave();
          this.abandoned.set(id, { generation: ctx.generation, err });
          this.o.logger.warn(
            { err, topic, partition },
            `${this.o.name}: batch given up on a Kafka error; the partition is read again from its committed offset`,
          );
          return;
        }
        this.lastFailure = isTidemarkError(err) ? err.describe() : (err as Error).message;
        if (!this.batchFailingSince.has(id)) this.batchFailingSince.set(id, Date.now());
        this.o.metrics.retries.inc({ group: this.o.name });
        this.o.logger.warn(
          { err, topic, partition, attempt, retryInMs: backoff },
          `${this.o.name}: batch failed; keeping it and retrying`,
        );
        const until = Date.now() + backoff;
        while (Date.now() < until && !signal.aborted && !ctx.isStale()) {
          await sleep(Math.min(1000, until - Date.now()), signal);
          await payload.heartbeat().catch(() => undefined);
        }
        backoff = Math.min(backoff * 2, this.o.retry.maxMs);
      }
    }
    this.batchFailingSince.delete(id);
    if (this.batchFailingSince.size === 0) this.lastFailure = undefined;
    this.o.metrics.lag.set(
      { group: this.o.name, topic, partition: String(partition) },
      Number(BigInt(batch.highWatermark) - BigInt(batch.lastOffset()) - 1n),
    );
  }

  private stopPartition(payload: EachBatchPayload, id: string, err: TidemarkError): void {
    const { topic, partition } = payload.batch;
    this.stopped.set(id, err.message);
    this.o.metrics.stoppedPartitions.set({ group: this.o.name }, this.stopped.size);
    this.o.logger.error(
      { err, topic, partition },
      `${this.o.name}: stopped ${id}: ${err.describe()}. Nothing after it is applied until this is fixed and the process restarted`,
    );
    payload.pause();
  }
}

/** Whether `work` settled within the stop's grace period (it is not waited for beyond it). */
async function withinGrace(work: Promise<unknown>): Promise<boolean> {
  const grace = new AbortController();
  try {
    return await Promise.race([
      work.then(() => true),
      sleep(DISCONNECT_GRACE_MS, grace.signal).then(() => false),
    ]);
  } finally {
    grace.abort();
  }
}

/** The error for an event a sink cannot read: it names topic, partition and offset, and stops the partition. */
export function unreadable(
  topic: string,
  partition: number,
  offset: string,
  why: string,
  cause?: unknown,
): TidemarkError {
  return new TidemarkError(
    'EVENT_UNREADABLE',
    `cannot read the event at ${topic} partition ${partition} offset ${offset}: ${why}`,
    {
      ...(cause === undefined ? {} : { cause }),
      hint: 'the event is kept in Kafka; check that capture and tier use the same kafka.topicPrefix and tidemark version, then restart tier',
    },
  );
}
