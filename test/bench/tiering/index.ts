// Tiering benchmark: Kafka → cold archive (local directory, MinIO; one tier process, then one per partition
// in the same group) and Kafka → hot replica (FerretDB), each beside a baseline measured in the same run (raw
// Kafka consumption; a plain insertMany into FerretDB), and
// the freshness of the hot replica behind real `tidemark capture` and `tidemark tier` processes.
// Run with `make bench BENCH=tiering` (npx tsx test/bench/run.ts tiering); about 4 minutes by default.
//
//   BENCH_EVENTS             change events put in Kafka once and read by every step (default 1,000,000)
//   BENCH_FRESHNESS_SECONDS  how long rows are written at 2,000/s for the freshness step (default 20)

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Partitioners, type Admin, type Kafka, type Message } from 'kafkajs';
import { MongoClient, type Document } from 'mongodb';
import mysql from 'mysql2/promise';
import {
  changeTopic,
  configSchema,
  createKafka,
  createLogger,
  documentId,
  ensureTopics,
  formatPosition,
  HEADER_SCHEMA,
  listManifestEntries,
  openObjectStore,
  rowToBson,
  schemasTopic,
  sleep,
  TableCodec,
  type ChangeEvent,
  type ObjectStore,
  type Row,
} from '../../../services/core/index.js';
import { META, runTierDaemon, type RowMeta } from '../../../services/tiering/index.js';
import { captureFixture } from '../../support/capture-fixture.js';
import { eventually } from '../../support/eventually.js';
import { CaptureProcess, freePort } from '../../support/capture-process.js';
import { localServices, s3Settings, uniqueName } from '../../support/local-services.js';
import { MESSAGES_TABLE, messageBody, messageTime } from '../chat-messages.js';
import { logTail, removeProcess } from '../daemon.js';
import { fmt, positiveNumber, rate, report, step, type Measurement } from '../measure.js';
import { errorText, printFailures, printTargets, type Target } from '../outcome.js';
import { cpuSecondsOf, everyServerCpu, peakRssOf, serverCpuSince, settle } from '../process-stats.js';
import { deleteTopics, dropMongoDatabases } from '../scratch.js';

const EVENTS = Math.floor(positiveNumber('BENCH_EVENTS', 1_000_000));
const FRESHNESS_SECONDS = positiveNumber('BENCH_FRESHNESS_SECONDS', 20);
/** No step may take longer than this; one that does fails with what it reached. */
const STEP_LIMIT_MS = 10 * 60_000;
/** The hot replica is stopped once it took this many times baseline B: its 0.7× target is out of reach. */
const HOT_CUTOFF_FACTOR = 3;
const PARTITIONS = 2;
/** Cold archive: events per data file (rotate.maxEvents). */
const COLD_MAX_EVENTS = 100_000;
const PRODUCE_CHUNK = 5_000;
const PRODUCE_IN_FLIGHT = 4;
/** Baseline B: insertMany chunks and how many run at once (the replica writes both partitions at once). */
const INSERT_CHUNK = 10_000;
const INSERT_IN_FLIGHT = 2;
/** Rows per source transaction, in the events put in Kafka and in the freshness writes. */
const ROWS_PER_TXN = 20;
const FRESHNESS_TXN_EVERY_MS = 10;
/** How long the freshness step waits, after the writes, for the last rows to become readable. */
const DRAIN_LIMIT_MS = 60_000;

const TARGETS = { coldDir: 200_000, coldS3: 100_000, hotVsInsert: 0.7, freshnessP99Ms: 1_000 };

const s = localServices();
const logger = createLogger({ level: 'warn' });

const DB = 'chat';
const TABLE = 'messages';
const TABLE_SCHEMA = MESSAGES_TABLE;

/** The i-th change event (i from 1): an insert of a chat message, as capture would publish it. */
function messageEvent(codec: TableCodec, i: number, baseMs: number): ChangeEvent {
  const tsMs = baseMs + Math.floor(i / 100);
  const row: Row = {
    id: BigInt(i),
    room_id: i % 500,
    user_id: BigInt(i % 10_000),
    body: messageBody(i),
    created_at: messageTime(tsMs, i),
  };
  const txn = Math.floor(i / ROWS_PER_TXN);
  return {
    op: 'c',
    before: null,
    after: row,
    key: codec.keyOf(row),
    tsMs,
    pos: { file: 1, offset: 4 + txn * 4_000, row: i % ROWS_PER_TXN },
    tx: `0-1-${txn}`,
    source: { serverId: 1, db: DB, table: TABLE, schemaVersion: codec.version },
  };
}

/** The document the hot replica writes for an insert event (FerretDB: no Decimal128). */
function replicaDocument(codec: TableCodec, event: ChangeEvent): Document {
  const mapping = { decimal128: false, nestedArrays: false };
  const after = event.after as Row;
  const meta: RowMeta = {
    pos: formatPosition(event.pos),
    ts: new Date(event.tsMs),
    op: event.op,
    tx: event.tx,
  };
  return {
    _id: documentId(codec.keyColumns, after),
    ...rowToBson(codec.table.columns, after, mapping),
    [META]: meta,
  };
}

// --- CPU of the local servers --------------------------------------------------------------------------

/** Runs `work` and prints the CPU the local servers spent meanwhile. */
async function withServerCpu<T>(label: string, work: () => Promise<T>): Promise<T> {
  const before = everyServerCpu();
  const result = await work();
  console.log(`  (${label}: server CPU meanwhile: ${serverCpuSince(before)})`);
  return result;
}

// --- Kafka ---------------------------------------------------------------------------------------------

interface Fill {
  prefix: string;
  topic: string;
  codec: TableCodec;
  /** High watermark of each partition after the fill. */
  ends: Map<number, bigint>;
  baseMs: number;
}

async function fillKafka(kafka: Kafka, admin: Admin, prefix: string): Promise<Fill> {
  const codec = new TableCodec(TABLE_SCHEMA);
  const topic = changeTopic(prefix, DB, TABLE);
  await ensureTopics(admin, [
    { topic: schemasTopic(prefix), partitions: 1, replicationFactor: 1, compacted: true },
    { topic, partitions: PARTITIONS, replicationFactor: 1, maxMessageBytes: 16 * 1024 * 1024 },
  ]);
  const producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  const baseMs = Date.now();
  try {
    await producer.send({
      topic: schemasTopic(prefix),
      acks: -1,
      messages: [
        {
          key: `${DB}.${TABLE}:${codec.version}`,
          value: JSON.stringify(codec.schema),
          headers: { [HEADER_SCHEMA]: codec.version },
        },
      ],
    });
    const headers = { [HEADER_SCHEMA]: codec.version };
    const pending: Promise<unknown>[] = [];
    for (let first = 1; first <= EVENTS; first += PRODUCE_CHUNK) {
      const messages: Message[] = [];
      for (let i = first; i < first + PRODUCE_CHUNK && i <= EVENTS; i++) {
        const event = messageEvent(codec, i, baseMs);
        // Round robin, not by key: every partition gets the same count, a multiple of COLD_MAX_EVENTS by
        // default, so each cold file is closed by rotate.maxEvents and no figure waits for the flush timer.
        messages.push({ key: event.key, value: codec.encode(event), headers, partition: i % PARTITIONS });
      }
      const sent = producer.send({ topic, acks: -1, messages });
      sent.catch(() => undefined); // awaited below; this only keeps a failure from being reported twice
      pending.push(sent);
      if (pending.length >= PRODUCE_IN_FLIGHT) await pending.shift();
    }
    await Promise.all(pending);
  } finally {
    await producer.disconnect();
  }
  const ends = new Map<number, bigint>();
  for (const p of await admin.fetchTopicOffsets(topic)) ends.set(p.partition, BigInt(p.high));
  const total = [...ends.values()].reduce((a, b) => a + b, 0n);
  if (total !== BigInt(EVENTS))
    throw new Error(`${topic} holds ${total} events after the fill, not ${EVENTS}`);
  return { prefix, topic, codec, ends, baseMs };
}

/** Baseline A: a kafkajs consumer (read_committed, like tier) that only counts the messages of its batches. */
async function rawConsume(kafka: Kafka, fill: Fill): Promise<{ joinedAt: number; doneAt: number }> {
  const consumer = kafka.consumer({
    groupId: uniqueName('tmbench_raw'),
    readUncommitted: false,
    maxBytesPerPartition: configSchema.parse({ tier: {} }).tier!.maxBytesPerPartition,
    maxWaitTimeInMs: 1_000,
  });
  let joinedAt: number | undefined;
  consumer.on(consumer.events.GROUP_JOIN, () => (joinedAt ??= performance.now()));
  let count = 0;
  let doneAt = 0;
  let finished: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finished = resolve));
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [fill.topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: 4,
      eachBatch: ({ batch }) => {
        count += batch.messages.length;
        if (count >= EVENTS && doneAt === 0) {
          doneAt = performance.now();
          finished();
        }
        return Promise.resolve();
      },
    });
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`raw Kafka consumption read ${count} of ${EVENTS} events in ${STEP_LIMIT_MS / 1000} s`),
          ),
        STEP_LIMIT_MS,
      );
    });
    try {
      await Promise.race([done, limit]);
    } finally {
      clearTimeout(timer);
    }
  } finally {
    await consumer.disconnect();
  }
  return { joinedAt: joinedAt ?? doneAt, doneAt };
}

async function committedEvents(
  admin: Admin,
  groupId: string,
  fill: Fill,
): Promise<{ sum: number; done: boolean; detail: string }> {
  const [entry] = await admin.fetchOffsets({ groupId, topics: [fill.topic] });
  let sum = 0;
  let done = true;
  const parts: string[] = [];
  for (const [partition, end] of fill.ends) {
    const offset = BigInt(entry?.partitions.find((p) => p.partition === partition)?.offset ?? '-1');
    if (offset > 0n) sum += Number(offset);
    if (offset < end) done = false;
    parts.push(`partition ${partition} at ${fmt(Number(offset))} of ${fmt(Number(end))}`);
  }
  return { sum, done, detail: parts.join(', ') };
}

async function groupStable(admin: Admin, groupId: string, members = 1): Promise<boolean> {
  const { groups } = await admin.describeGroups([groupId]);
  const group = groups[0];
  return group?.state === 'Stable' && group.members.length >= members;
}

interface Followed {
  /** Seconds from start until the consumer group was joined (not in the measurement). */
  startup: number;
  /** Seconds from joining the group until its commits reached the end (or the run was stopped). */
  streaming: number;
  /** Events committed when following ended; below EVENTS when the run was stopped early. */
  committed: number;
  /** Events already committed when the group was joined (by members that joined before the others). */
  committedAtJoin: number;
  finished: boolean;
  /** Why the run was stopped early, if it was. */
  stopped?: string;
}

interface FollowOptions {
  startedAt: number;
  /** Stop after this long in all. */
  limitMs: number;
  /** Stop when the committed offsets have not moved for this long. */
  stallMs: number;
  /** Whether being stopped early is an error (else it is reported as such and the run goes on). */
  stopIsError: boolean;
  /** The group counts as joined once it is stable with this many members (default 1). */
  members?: number;
  /** Throws when the daemon died. */
  alive: () => void;
  onJoined?: () => void;
}

/** Follows a tier consumer group's committed offsets until they reach the end of every partition. */
async function followGroup(
  admin: Admin,
  fill: Fill,
  name: string,
  groupId: string,
  o: FollowOptions,
): Promise<Followed> {
  let joinedAt: number | undefined;
  let lastReport = o.startedAt;
  let reported = 0;
  let lastMove = o.startedAt;
  let committed = 0;
  let committedAtJoin = 0;
  for (;;) {
    o.alive();
    if (joinedAt === undefined && (await groupStable(admin, groupId, o.members))) {
      joinedAt = performance.now();
      committedAtJoin = (await committedEvents(admin, groupId, fill)).sum;
      o.onJoined?.();
    }
    const progress = await committedEvents(admin, groupId, fill);
    const now = performance.now();
    if (progress.sum !== committed) lastMove = now;
    committed = progress.sum;
    const joined = joinedAt ?? o.startedAt;
    const result = (stopped?: string): Followed => ({
      startup: (joined - o.startedAt) / 1000,
      streaming: (now - joined) / 1000,
      committed,
      committedAtJoin,
      finished: stopped === undefined,
      ...(stopped === undefined ? {} : { stopped }),
    });
    if (progress.done) return result();
    if (now - lastReport >= 10_000) {
      console.log(
        `  ${name}: ${fmt(committed)} of ${fmt(EVENTS)} events after ${((now - o.startedAt) / 1000).toFixed(0)} s (${fmt(((committed - reported) * 1000) / (now - lastReport))}/s over the last ${((now - lastReport) / 1000).toFixed(0)} s; ${progress.detail})`,
      );
      lastReport = now;
      reported = committed;
    }
    const why =
      now - o.startedAt > o.limitMs
        ? `after ${(o.limitMs / 1000).toFixed(0)} s`
        : now - lastMove > o.stallMs
          ? `after its commits had not moved for ${(o.stallMs / 1000).toFixed(0)} s`
          : undefined;
    if (why) {
      const message = `${name}: stopped ${why}, with ${fmt(committed)} of ${fmt(EVENTS)} events committed by group ${groupId}`;
      if (o.stopIsError) throw new Error(message);
      console.log(`  ${message}`);
      return result(message);
    }
    await sleep(100);
  }
}

/**
 * The cold archive: the real tier daemon in this process (`--only cold`, a fresh group) until its group
 * committed the end of every partition. The measurement starts when the group was joined.
 */
async function runColdInProcess(
  admin: Admin,
  fill: Fill,
  name: string,
  cold: Record<string, unknown>,
): Promise<{ measurement: Measurement; followed: Followed; metrics: Map<string, number> }> {
  const group = uniqueName('tmbench_tier');
  const port = await freePort();
  const config = configSchema.parse({
    kafka: { brokers: s.kafka.brokers, topicPrefix: fill.prefix },
    tier: { group, cold, retry: { minMs: 200, maxMs: 5_000 } },
    log: { level: 'warn' },
    http: { host: '127.0.0.1', port },
  });
  const controller = new AbortController();
  let failure: unknown;
  let ended = false;
  let running: Promise<void> | undefined;
  let followed: Followed | undefined;
  try {
    const measurement = await withServerCpu(name, () =>
      step(name, 'events', async () => {
        const startedAt = performance.now();
        running = runTierDaemon(config, { only: 'cold', signal: controller.signal }).then(
          () => void (ended = true),
          (err: unknown) => {
            ended = true;
            failure = err;
          },
        );
        followed = await followGroup(admin, fill, name, `${group}.cold`, {
          startedAt,
          limitMs: STEP_LIMIT_MS,
          stallMs: 120_000,
          stopIsError: true,
          alive: () => {
            if (failure !== undefined)
              throw new Error(`${name}: the tier daemon failed: ${errorText(failure)}`);
            if (ended) throw new Error(`${name}: the tier daemon stopped by itself`);
          },
        });
        return followed.committed;
      }),
    );
    const metrics = await scrapeMetrics(port);
    return { measurement: { ...measurement, seconds: followed!.streaming }, followed: followed!, metrics };
  } finally {
    controller.abort();
    await running;
  }
}

/** A daemon's /metrics, each metric summed over its labels. */
async function scrapeMetrics(port: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const line of text.split('\n')) {
      const m = /^([a-z_]+)(?:\{[^}]*\})? ([0-9.eE+-]+|NaN)$/.exec(line);
      if (m) out.set(m[1] as string, (out.get(m[1] as string) ?? 0) + Number(m[2]));
    }
  } catch {
    // the daemon is gone: no figures
  }
  return out;
}

/** What the hot replica's own metrics and log say about its writes. */
async function describeHotWrites(proc: CaptureProcess): Promise<string> {
  const m = await scrapeMetrics(proc.port);
  const batches = m.get('tidemark_tier_hot_write_seconds_count') ?? 0;
  const writeSeconds = m.get('tidemark_tier_hot_write_seconds_sum') ?? 0;
  const retries = m.get('tidemark_tier_retries_total') ?? 0;
  const failed = proc
    .log()
    .split('\n')
    .filter((l) => l.includes('batch failed'));
  const first = failed[0] ? (/"message":"([^"]*)"/.exec(failed[0])?.[1] ?? '') : '';
  return `${fmt(batches)} batches written to FerretDB in ${writeSeconds.toFixed(1)} s (mean ${batches > 0 ? ((writeSeconds / batches) * 1000).toFixed(0) : '-'} ms per batch), ${fmt(retries)} retried batches${first ? `, first failure: ${first}` : ''}`;
}

// --- Steps ---------------------------------------------------------------------------------------------

const targets: Target[] = [];
const failures: string[] = [];
/** MongoDB databases this run created, dropped at its end (again: a stopped daemon may still write). */
const scratchDatabases: string[] = [];

async function coldStep(
  admin: Admin,
  fill: Fill,
  name: string,
  url: string,
  store: ObjectStore,
  s3: Record<string, unknown> | undefined,
  processes: number,
  deflateLevel?: number,
): Promise<Measurement> {
  const archivePrefix = uniqueName('bench');
  try {
    await store.head(`${archivePrefix}/probe`);
  } catch (err) {
    throw new Error(`${name}: ${store.url} is not reachable, so the step was skipped: ${errorText(err)}`);
  }
  try {
    const cold = {
      url,
      prefix: archivePrefix,
      ...(s3 ? { s3 } : {}),
      rotate: { maxEvents: COLD_MAX_EVENTS },
      ...(deflateLevel === undefined ? {} : { deflateLevel }),
      // Files close by count (every partition gets a multiple of COLD_MAX_EVENTS); the timer only closes a
      // last partial file when BENCH_EVENTS makes one.
      flushAfterSeconds: (EVENTS / PARTITIONS) % COLD_MAX_EVENTS === 0 ? 60 : 1,
    };
    const { measurement, followed, metrics } =
      processes === 1
        ? await runColdInProcess(admin, fill, name, cold)
        : await runTierChildren(
            admin,
            fill,
            name,
            {
              part: 'cold',
              tier: { cold },
              processes,
              limitMs: STEP_LIMIT_MS,
              stallMs: 120_000,
              stopIsError: true,
            },
            async (procs) => {
              const summed = new Map<string, number>();
              for (const p of procs) {
                for (const [k, v] of await scrapeMetrics(p.port)) summed.set(k, (summed.get(k) ?? 0) + v);
              }
              return summed;
            },
          ).then(({ measurement, followed, inspected }) => ({ measurement, followed, metrics: inspected }));
    let rows = 0n;
    let bytes = 0n;
    let files = 0;
    for await (const entry of listManifestEntries(store, archivePrefix, DB, TABLE)) {
      rows += entry.rows;
      bytes += entry.bytes;
      files++;
    }
    if (rows !== BigInt(EVENTS)) {
      throw new Error(`${name}: the manifest entries hold ${rows} events, not ${EVENTS}`);
    }
    console.log(
      `  ${name}: ${files} data files, ${(Number(bytes) / 1024 / 1024).toFixed(1)} MiB (${(Number(bytes) / EVENTS).toFixed(0)} bytes/event); start-up before the group was joined, not counted: ${followed.startup.toFixed(2)} s`,
    );
    const retried = metrics.get('tidemark_tier_retries_total') ?? 0;
    if (retried > 0) {
      throw new Error(
        `${name}: ${retried} batches were retried (a store or Kafka failed meanwhile; see the warnings above), so ${fmt(rate(measurement))} events/s is not a clean figure`,
      );
    }
    return measurement;
  } finally {
    try {
      const keys: string[] = [];
      for await (const info of store.list(`${archivePrefix}/`)) keys.push(info.key);
      for (let i = 0; i < keys.length; i += 500) await store.delete(keys.slice(i, i + 500));
    } catch (err) {
      console.log(`  (could not remove the archive objects under ${archivePrefix}/: ${errorText(err)})`);
    }
  }
}

/** Baseline B: the replica's documents with a plain insertMany, unordered, into a scratch database. */
async function plainInsert(mongo: MongoClient, fill: Fill, database: string): Promise<number> {
  const collection = mongo.db(database).collection(`${DB}.${TABLE}`);
  let next = 1;
  const deadline = performance.now() + STEP_LIMIT_MS;
  await Promise.all(
    Array.from({ length: INSERT_IN_FLIGHT }, async () => {
      while (next <= EVENTS) {
        if (performance.now() > deadline) {
          throw new Error(
            `baseline B: insertMany did not insert ${EVENTS} documents within ${STEP_LIMIT_MS / 1000} s`,
          );
        }
        const first = next;
        next += INSERT_CHUNK;
        const docs: Document[] = [];
        for (let i = first; i < first + INSERT_CHUNK && i <= EVENTS; i++) {
          docs.push(replicaDocument(fill.codec, messageEvent(fill.codec, i, fill.baseMs)));
        }
        await collection.insertMany(docs, { ordered: false });
      }
    }),
  );
  return EVENTS;
}

interface TierChildren {
  part: 'hot' | 'cold';
  /** The `tier` section of their config (group added). */
  tier: Record<string, unknown>;
  processes: number;
  limitMs: number;
  stallMs: number;
  /** Whether being stopped early is an error (else it is reported as such). */
  stopIsError: boolean;
}

/**
 * Real `tidemark tier --only <part>` processes in one fresh group (so they can be stopped even in the middle
 * of a store write), until the group committed the end of every partition. The measurement starts when all of
 * them were in the group; events committed before that are not counted. CPU is theirs together, from then.
 * `inspect` reads from them before they are stopped.
 */
async function runTierChildren<T>(
  admin: Admin,
  fill: Fill,
  name: string,
  o: TierChildren,
  inspect: (procs: CaptureProcess[]) => Promise<T>,
): Promise<{ measurement: Measurement; followed: Followed; inspected: T }> {
  const group = uniqueName('tmbench_tier');
  const procs: CaptureProcess[] = [];
  try {
    for (let i = 0; i < o.processes; i++) {
      procs.push(
        await CaptureProcess.create(
          {
            kafka: { brokers: s.kafka.brokers, topicPrefix: fill.prefix },
            tier: { group, ...o.tier, retry: { minMs: 200, maxMs: 5_000 } },
          },
          'tier',
        ),
      );
    }
    const cpu = () => procs.reduce((sum, p) => sum + (cpuSecondsOf(p.pid) ?? 0), 0);
    let cpuAtJoin = 0;
    const followed = await withServerCpu(name, () => {
      for (const p of procs) p.start(['--only', o.part]);
      return followGroup(admin, fill, name, `${group}.${o.part}`, {
        startedAt: performance.now(),
        limitMs: o.limitMs,
        stallMs: o.stallMs,
        stopIsError: o.stopIsError,
        members: o.processes,
        alive: () => {
          for (const p of procs) {
            if (cpuSecondsOf(p.pid) === undefined) {
              throw new Error(`${name}: a tidemark tier process exited: ${logTail(p, 5)}`);
            }
          }
        },
        onJoined: () => (cpuAtJoin = cpu()),
      });
    });
    const measurement: Measurement = {
      name: followed.finished ? name : `${name} (stopped at ${fmt(followed.committed)})`,
      count: followed.committed - followed.committedAtJoin,
      unit: 'events',
      seconds: followed.streaming,
      cpuSeconds: cpu() - cpuAtJoin,
      peakRssMiB: Math.max(...procs.map((p) => peakRssOf(p.pid))),
    };
    return { measurement, followed, inspected: await inspect(procs) };
  } finally {
    await Promise.all(procs.map((p) => removeProcess(p, 10_000)));
  }
}

async function hotSteps(admin: Admin, fill: Fill): Promise<void> {
  const what = `hot replica ≥ ${TARGETS.hotVsInsert}× plain insertMany`;
  const mongo = new MongoClient(s.mongodb.uri);
  await mongo.connect();
  const scratch = uniqueName('tm_bench_insert');
  const replica = uniqueName('tm_bench_hot');
  scratchDatabases.push(scratch, replica);
  try {
    await settle('ferretdb', 60_000, 'FerretDB');
    const baseline = await withServerCpu('baseline B', () =>
      step(`baseline B: insertMany ${fmt(INSERT_CHUNK)}-doc chunks ×${INSERT_IN_FLIGHT}`, 'events', () =>
        plainInsert(mongo, fill, scratch),
      ),
    );
    await mongo
      .db(scratch)
      .dropDatabase()
      .catch(() => undefined);
    const limitMs = Math.min(STEP_LIMIT_MS, Math.max(60_000, HOT_CUTOFF_FACTOR * baseline.seconds * 1000));
    let run: { measurement: Measurement; followed: Followed; writes: string } | undefined;
    try {
      const hot = await runTierChildren(
        admin,
        fill,
        'tier hot → FerretDB',
        {
          part: 'hot',
          tier: { hot: { uri: s.mongodb.uri, database: replica } },
          processes: 1,
          limitMs,
          stallMs: 60_000,
          stopIsError: false,
        },
        (procs) => describeHotWrites(procs[0]!),
      );
      run = { measurement: hot.measurement, followed: hot.followed, writes: hot.inspected };
      console.log(
        `  tier hot: start-up before the group was joined, not counted: ${run.followed.startup.toFixed(2)} s; ${run.writes}`,
      );
      if (run.followed.finished) {
        const stored = Number((await mongo.db(replica).command({ collStats: `${DB}.${TABLE}` })).count);
        if (stored !== EVENTS) failures.push(`the hot replica holds ${stored} documents, not ${EVENTS}`);
      }
    } catch (err) {
      failures.push(errorText(err));
      console.log(`  FAILED: ${errorText(err)}`);
    }
    report(
      `Hot replica: ${fmt(EVENTS)} inserts into FerretDB (baseline B: plain insertMany; cpu s and peak MiB of tier hot are its process's)`,
      run ? [baseline, run.measurement] : [baseline],
      baseline,
    );
    if (!run) {
      targets.push({ what, met: false, detail: 'failed' });
      return;
    }
    const ratio = rate(run.measurement) / rate(baseline);
    targets.push({
      what,
      met: run.followed.finished && ratio >= TARGETS.hotVsInsert,
      detail: `${ratio.toFixed(2)}× (${fmt(rate(run.measurement))} vs ${fmt(rate(baseline))} events/s)${run.followed.finished ? '' : `; did not finish: ${run.followed.stopped}`}`,
    });
  } finally {
    await mongo
      .db(scratch)
      .dropDatabase()
      .catch(() => undefined);
    await mongo.close();
  }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

function latencySummary(label: string, from: Float64Array, to: Float64Array, rows: number): Float64Array {
  const latencies = new Float64Array(rows);
  for (let id = 1; id <= rows; id++) latencies[id - 1] = (to[id] as number) - (from[id] as number);
  latencies.sort();
  const p = (q: number) => percentile(latencies, q).toFixed(0);
  console.log(`${label}: p50 ${p(50)} ms, p90 ${p(90)} ms, p99 ${p(99)} ms, max ${p(100)} ms`);
  return latencies;
}

/**
 * Freshness: rows written to MariaDB at 2,000/s in 20-row transactions, through real `tidemark capture` and
 * `tidemark tier --only hot` processes, until readable in FerretDB. The time each row's transaction
 * returned from COMMIT is taken here; from there, the time until the row is in Kafka for read_committed
 * consumers (a consumer here) and until it is readable in FerretDB. Readable is judged by the replica's
 * document count (collStats): rows reach the replica in commit order (one partition, batches applied in
 * order), so the row of rank k is readable once the count reaches k. A find by _id would not do: FerretDB
 * 1.x on SQLite answers it with a scan of the whole collection, and polling that way would load the very
 * server being measured. The count is polled no more often than every 3× its own duration.
 */
async function freshnessStep(kafka: Kafka, kafkaAdmin: Admin): Promise<void> {
  const ddl =
    'CREATE TABLE messages (id BIGINT PRIMARY KEY, room_id INT NOT NULL, user_id BIGINT NOT NULL, body VARCHAR(200) NOT NULL, created_at DATETIME(6) NOT NULL)';
  const fx = await captureFixture({
    tables: [ddl],
    // Capture batching as shipped (the fixture shortens the linger for tests).
    configure: (raw) => delete (raw.capture as Record<string, unknown>).batch,
  });
  const hotDatabase = uniqueName('tm_bench_fresh');
  scratchDatabases.push(hotDatabase);
  const procs: CaptureProcess[] = [];
  const mongo = new MongoClient(s.mongodb.uri);
  const consumer = kafka.consumer({
    groupId: uniqueName('tmbench_fresh'),
    readUncommitted: false,
    maxWaitTimeInMs: 100,
  });
  let writer: mysql.Connection | undefined;
  let ok = false;
  try {
    await mongo.connect();
    const capture = await CaptureProcess.create(fx.raw);
    procs.push(capture);
    capture.start();
    await capture.waitForStatus('streaming', 120_000);
    writer = await mysql.createConnection({
      host: s.mysql.host,
      port: s.mysql.port,
      user: s.mysql.adminUser,
      password: s.mysql.adminPassword,
      database: fx.db,
      charset: 'utf8mb4',
    });
    const connection = writer;
    const insert = (first: number, count: number) =>
      connection.query(
        `INSERT INTO messages VALUES ${Array.from(
          { length: count },
          (_, k) =>
            `(${first + k}, ${(first + k) % 500}, ${(first + k) % 10_000}, '${messageBody(first + k)}', UTC_TIMESTAMP(6))`,
        ).join(',')}`,
      );
    // A first row, so the change topic exists before tier starts and both are warm before the measurement.
    await insert(0, 1);
    const topic = changeTopic(fx.prefix, fx.db, 'messages');
    await eventually(
      'capture to create the change topic',
      async () => ((await kafkaAdmin.listTopics()).includes(topic) ? true : undefined),
      120_000,
    );
    const tier = await CaptureProcess.create(
      {
        kafka: fx.raw.kafka,
        tier: { hot: { uri: s.mongodb.uri, database: hotDatabase }, retry: { minMs: 200, maxMs: 2_000 } },
      },
      'tier',
    );
    procs.push(tier);
    tier.start(['--only', 'hot']);
    await tier.waitForStatus('tiering', 120_000);
    const db = mongo.db(hotDatabase);
    const collection = `${fx.db}.messages`;
    const replicaCount = async (): Promise<number> => {
      try {
        return Number((await db.command({ collStats: collection })).count ?? 0);
      } catch {
        return 0; // the collection does not exist yet
      }
    };
    await eventually(
      'the first row to reach the replica',
      async () => ((await replicaCount()) >= 1 ? true : undefined),
      120_000,
    );

    const planned = Math.floor((FRESHNESS_SECONDS * 1000) / FRESHNESS_TXN_EVERY_MS) * ROWS_PER_TXN;
    const committedAt = new Float64Array(planned + 1);
    const inKafkaAt = new Float64Array(planned + 1);
    const readableAt = new Float64Array(planned + 1);
    let inKafka = 0;
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: ({ batch }) => {
        const now = performance.now();
        for (const message of batch.messages) {
          const id = Number((JSON.parse(message.key?.toString() ?? '[]') as unknown[])[0]);
          if (id >= 1 && id <= planned && inKafkaAt[id] === 0) {
            inKafkaAt[id] = now;
            inKafka++;
          }
        }
        return Promise.resolve();
      },
    });

    let written = 0;
    let writing = true;
    let writeFailed = false;
    let pollFailed = false;
    const cpuBefore = { capture: cpuSecondsOf(capture.pid) ?? 0, tier: cpuSecondsOf(tier.pid) ?? 0 };
    const started = performance.now();
    const load = (async () => {
      try {
        for (let txn = 0; written < planned && !pollFailed; txn++) {
          const wait = started + txn * FRESHNESS_TXN_EVERY_MS - performance.now();
          if (wait > 0) await sleep(wait);
          const first = written + 1;
          await insert(first, ROWS_PER_TXN);
          const now = performance.now();
          for (let id = first; id < first + ROWS_PER_TXN; id++) committedAt[id] = now;
          written += ROWS_PER_TXN;
        }
      } catch (err) {
        writeFailed = true;
        throw err;
      } finally {
        writing = false;
      }
    })();
    let readable = 0;
    let polls = 0;
    let pollMs = 0;
    let notReadable = 0;
    let notInKafka = 0;
    const poll = (async () => {
      let writesEnded: number | undefined;
      while (!writeFailed && (writing || readable < written || inKafka < written)) {
        const asked = performance.now();
        const count = (await replicaCount()) - 1; // the warm-up row
        const now = performance.now();
        polls++;
        pollMs += now - asked;
        // Only rows already committed count: the count can run ahead of the writer's clock reading.
        for (let id = readable + 1; id <= Math.min(count, written); id++) readableAt[id] = now;
        readable = Math.max(readable, Math.min(count, written));
        if (!writing) writesEnded ??= now;
        if (writesEnded !== undefined && now - writesEnded > DRAIN_LIMIT_MS) {
          // Rows still missing count with the time waited: their latencies are lower bounds.
          notReadable = written - readable;
          notInKafka = written - inKafka;
          for (let id = 1; id <= written; id++) {
            if (readableAt[id] === 0) readableAt[id] = now;
            if (inKafkaAt[id] === 0) inKafkaAt[id] = now;
          }
          pollFailed = true;
          return;
        }
        // One probe in flight at a time, back to back: the time a row waits to be seen by the probe is
        // measurement error (up to one probe interval), kept as small as FerretDB's answer allows.
        await sleep(Math.max(10, now - asked));
      }
    })();
    await Promise.all([load, poll]);
    const window = (performance.now() - started) / 1000;
    const cpu = {
      capture: (cpuSecondsOf(capture.pid) ?? 0) - cpuBefore.capture,
      tier: (cpuSecondsOf(tier.pid) ?? 0) - cpuBefore.tier,
    };
    const stored = await replicaCount();
    if (notReadable > 0 || notInKafka > 0) {
      const message = `freshness: ${(DRAIN_LIMIT_MS / 1000).toFixed(0)} s after the writes ended, ${fmt(notReadable)} of ${fmt(written)} rows were not readable in the replica and ${fmt(notInKafka)} not in Kafka; they count with that wait, so the latencies below are lower bounds (the daemons' last log lines follow)`;
      failures.push(message);
      console.log(`  ${message}`);
    } else if (stored !== written + 1) {
      failures.push(`freshness: the replica holds ${stored} documents, not ${written + 1}`);
    }
    const writeRate = (written / ((committedAt[written] as number) - started)) * 1000;
    const child = (name: string, proc: CaptureProcess, cpuSeconds: number): Measurement => ({
      name,
      count: written,
      unit: 'rows',
      seconds: window,
      cpuSeconds,
      peakRssMiB: peakRssOf(proc.pid),
    });
    report(
      `Freshness: ${fmt(written)} rows written at ${fmt(writeRate)} rows/s in ${ROWS_PER_TXN}-row transactions, until all were readable (cpu s and peak MiB of the daemons)`,
      [child('tidemark capture', capture, cpu.capture), child('tidemark tier --only hot', tier, cpu.tier)],
    );
    latencySummary('commit → in Kafka (read_committed)', committedAt, inKafkaAt, written);
    const latencies = latencySummary('commit → readable in FerretDB', committedAt, readableAt, written);
    console.log(
      `  (readable: ${fmt(polls)} collStats polls, one every ${((window * 1000) / Math.max(1, polls)).toFixed(0)} ms on average, each ${(pollMs / Math.max(1, polls)).toFixed(0)} ms: a row is seen up to one interval after it became readable)`,
    );
    const windowRows = Math.max(1, Math.round(writeRate * 5));
    const worst: string[] = [];
    for (let from = 1; from <= written; from += windowRows) {
      let max = 0;
      for (let id = from; id < from + windowRows && id <= written; id++) {
        max = Math.max(max, (readableAt[id] as number) - (committedAt[id] as number));
      }
      worst.push(fmt(max));
    }
    console.log(`  worst commit → readable per 5 s of writes, in ms: ${worst.join(', ')}`);
    console.log(`  tier hot: ${await describeHotWrites(tier)}`);
    const p99 = percentile(latencies, 99);
    targets.push({
      what: `freshness p99 < ${fmt(TARGETS.freshnessP99Ms)} ms`,
      met: p99 < TARGETS.freshnessP99Ms,
      detail: `p99 ${p99.toFixed(0)} ms${notReadable > 0 ? ` or more (${fmt(notReadable)} rows never became readable)` : ''}`,
    });
    ok = notReadable === 0 && notInKafka === 0;
  } finally {
    await consumer.disconnect().catch(() => undefined);
    for (const proc of procs) {
      if (!ok) console.log(`\n--- last lines of the log of tidemark ${proc.command}:\n${logTail(proc, 15)}`);
      await removeProcess(proc, 15_000).catch(() => undefined);
    }
    await writer?.end().catch(() => undefined);
    await mongo.close().catch(() => undefined);
    await fx.drop().catch(() => undefined);
    await deleteTopics(kafkaAdmin, fx.prefix);
  }
}

async function main(): Promise<void> {
  const prefix = uniqueName('tmbench');
  const kafka = createKafka(
    configSchema.parse({ kafka: { brokers: s.kafka.brokers, clientId: 'tidemark-bench' } }).kafka!,
    logger,
  );
  const admin = kafka.admin();
  await admin.connect();
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-bench-archive-'));
  console.log(
    `${fmt(EVENTS)} change events of ${DB}.${TABLE} in ${PARTITIONS} partitions (prefix ${prefix}); freshness for ${FRESHNESS_SECONDS} s`,
  );
  try {
    let fill: Fill | undefined;
    const filled = await withServerCpu('fill', () =>
      step('fill: kafkajs producer, acks=all', 'events', async () => {
        fill = await fillKafka(kafka, admin, prefix);
        return EVENTS;
      }),
    );
    if (!fill) throw new Error('the fill produced nothing');
    const filledWith = fill;
    const mib =
      (fill.codec.encode(messageEvent(fill.codec, EVENTS, fill.baseMs)).length * EVENTS) / 1024 / 1024;
    console.log(`  (about ${mib.toFixed(0)} MiB of event values, ${fill.topic})`);

    let consumed = { joinedAt: 0, doneAt: 0 };
    const rawWhole = await withServerCpu('baseline A', () =>
      step('baseline A: raw kafkajs consumer (count only)', 'events', async () => {
        consumed = await rawConsume(kafka, filledWith);
        return EVENTS;
      }),
    );
    const raw = { ...rawWhole, seconds: (consumed.doneAt - consumed.joinedAt) / 1000 };
    console.log(
      `  baseline A: start-up before the group was joined, not counted: ${(rawWhole.seconds - raw.seconds).toFixed(2)} s (with the disconnect)`,
    );
    report('Kafka', [filled, raw], raw);

    const cold: Measurement[] = [raw];
    const s3 = s3Settings();
    const dirStore = openObjectStore(`dir:${dir}`);
    const minio = openObjectStore(`s3://${s.s3.bucket}`, s3);
    // One process, and the group scaled out to one process per partition (what a deployment does for more).
    // The default deflate level, and level 6 (zlib's own default) beside it: what smaller files cost.
    const steps: [string, string, ObjectStore, Record<string, unknown> | undefined, number, number?][] = [
      ['tier cold → local dir', `dir:${dir}`, dirStore, undefined, 1],
      [`tier cold → local dir, ${PARTITIONS} processes`, `dir:${dir}`, dirStore, undefined, PARTITIONS],
      ['tier cold → MinIO', `s3://${s.s3.bucket}`, minio, s3, 1],
      ['tier cold → local dir, deflateLevel 6', `dir:${dir}`, dirStore, undefined, 1, 6],
    ];
    const figures = { dir: [] as string[], s3: [] as string[], bestDir: 0, bestS3: 0 };
    for (const [name, url, store, settings, processes, deflateLevel] of steps) {
      const kind = settings ? 's3' : 'dir';
      try {
        const measurement = await coldStep(
          admin,
          filledWith,
          name,
          url,
          store,
          settings,
          processes,
          deflateLevel,
        );
        cold.push(measurement);
        const r = rate(measurement);
        const level = deflateLevel === undefined ? '' : ` at deflateLevel ${deflateLevel}`;
        figures[kind].push(
          `${fmt(r)} events/s with ${processes} process${processes > 1 ? 'es' : ''}${level}`,
        );
        // The targets are for the default settings.
        if (deflateLevel !== undefined) continue;
        if (kind === 'dir') figures.bestDir = Math.max(figures.bestDir, r);
        else figures.bestS3 = Math.max(figures.bestS3, r);
      } catch (err) {
        failures.push(errorText(err));
        figures[kind].push(`failed with ${processes} process${processes > 1 ? 'es' : ''}`);
        console.log(`  FAILED: ${errorText(err)}`);
      }
    }
    targets.push(
      {
        what: `tier cold → local dir ≥ ${fmt(TARGETS.coldDir)} events/s`,
        met: figures.bestDir >= TARGETS.coldDir,
        detail: figures.dir.join('; '),
      },
      {
        what: `tier cold → MinIO ≥ ${fmt(TARGETS.coldS3)} events/s`,
        met: figures.bestS3 >= TARGETS.coldS3,
        detail: figures.s3.join('; '),
      },
    );
    report(`Cold archive: ${fmt(EVENTS)} events (baseline A: raw consumption)`, cold, raw);
    if ((EVENTS / PARTITIONS) % COLD_MAX_EVENTS !== 0) {
      console.log(
        `(each partition's last file, short of rotate.maxEvents (${fmt(COLD_MAX_EVENTS)}), is closed by flushAfterSeconds (1 s) on the daemon's 1-second tick: 1–2 s of every cold figure)`,
      );
    }

    try {
      await hotSteps(admin, filledWith);
    } catch (err) {
      failures.push(errorText(err));
      console.log(`  FAILED: ${errorText(err)}`);
    }

    try {
      await settle('ferretdb', 180_000, 'FerretDB');
      await freshnessStep(kafka, admin);
    } catch (err) {
      failures.push(errorText(err));
      targets.push({
        what: `freshness p99 < ${fmt(TARGETS.freshnessP99Ms)} ms`,
        met: false,
        detail: 'failed',
      });
      console.log(`  FAILED: ${errorText(err)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await deleteTopics(admin, prefix);
    await admin.disconnect();
    await dropMongoDatabases(scratchDatabases);
  }

  printTargets(targets);
  console.log(
    '(peak MiB: of this process during the step, where the cold tier daemon runs, or of the daemon process named; server CPU: of the local servers, shared with anything else using them)',
  );
  printFailures(failures);
}

await main();
