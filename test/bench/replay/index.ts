// Restore benchmark: a history of change events over the state of a chat `messages` table, built through
// real `tidemark capture` and `tidemark tier --only cold` processes into a local directory archive, then
// restored with runRestore (archive only) to a binlog position near its end, into a directory (JSON Lines)
// and into MongoDB (FerretDB). Beside it, measured in the same run, the classic point-in-time recovery:
// the starting state loaded from mariadb-dump into an empty database, then `mariadb-binlog | mariadb`
// replaying the source's binlog up to the same position. Every result is compared with the source's own
// state at that position. Run with `make bench BENCH=replay` (npx tsx test/bench/run.ts replay); about
// 2 minutes by default (most of it building the history through capture and tier).
//
//   BENCH_EVENTS  change events in the history, the capture snapshot's included (default 1,000,000)
//   BENCH_ROWS    rows of the table's state, from the snapshot to the end (default 100,000)

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { Admin } from 'kafkajs';
import { MongoClient } from 'mongodb';
import mysql from 'mysql2/promise';
import {
  configSchema,
  createKafka,
  createLogger,
  listManifestEntries,
  openObjectStore,
  sleep,
  type Config,
  type ObjectStore,
} from '../../../services/core/index.js';
import { runRestore, type Progress, type RestoreSummary } from '../../../services/replay/restore.js';
import { captureFixture, type CaptureFixture } from '../../support/capture-fixture.js';
import { CaptureProcess } from '../../support/capture-process.js';
import { localServices, uniqueName } from '../../support/local-services.js';
import { messageBody, messageTime } from '../chat-messages.js';
import { logTail, removeProcess, stopProcess } from '../daemon.js';
import { fmt, positiveNumber, step } from '../measure.js';
import { errorText, printFailures, printTargets, type Target } from '../outcome.js';
import { cpuSecondsOf, serverCpu, settle, type Server } from '../process-stats.js';
import { deleteTopics, dropMongoDatabases } from '../scratch.js';

const EVENTS = Math.floor(positiveNumber('BENCH_EVENTS', 1_000_000));
const ROWS = Math.floor(positiveNumber('BENCH_ROWS', 100_000));
if (ROWS >= EVENTS) throw new Error(`BENCH_ROWS (${ROWS}) must be below BENCH_EVENTS (${EVENTS})`);
/** Row changes written to the binlog after the snapshot: the history is the snapshot's rows plus these. */
const CHANGES = EVENTS - ROWS;
/** The restore point: the first statement boundary after this share of the changes. */
const POINT_SHARE = 0.99;
/** Rows per statement of the initial load, and per INSERT, UPDATE or DELETE of the changes. */
const LOAD_ROWS = 1_000;
const STATEMENT_ROWS = 500;
const PARTITIONS = 2;
/** The archive must grow at least this often while it is built, or the run stops with the daemons' logs. */
const STALL_MS = 180_000;

const TARGETS = { dirSeconds: 20, ratio: 1 };

const s = localServices();
const logger = createLogger({ level: 'warn' });

const TABLE = 'messages';
const COLUMNS = ['id', 'room_id', 'user_id', 'body', 'created_at'] as const;
const DDL = `CREATE TABLE ${TABLE} (
  id BIGINT PRIMARY KEY,
  room_id INT NOT NULL,
  user_id BIGINT NOT NULL,
  body TEXT NOT NULL,
  created_at DATETIME(6) NOT NULL)`;
const BASE_MS = Date.UTC(2026, 2, 1, 8, 0, 0);

/** A small deterministic random source, so a run writes the same history every time. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function messageValues(id: number): string {
  const createdAt = messageTime(BASE_MS + id * 250, id);
  return `(${id}, ${id % 500}, ${id % 10_000}, ${mysql.escape(messageBody(id))}, '${createdAt}')`;
}

// --- The state, as one digest that the source, the baseline and every restore are compared by -----------

interface StateDigest {
  rows: number;
  sha256: string;
}

/** Rows as the text of their columns, hashed in id order. */
function digestOf(rows: string[][]): StateDigest {
  rows.sort((a, b) => Number(a[0]) - Number(b[0]));
  const hash = createHash('sha256');
  for (const row of rows) hash.update(`${JSON.stringify(row)}\n`);
  return { rows: rows.length, sha256: hash.digest('hex') };
}

async function mysqlDigest(conn: mysql.Connection, db: string): Promise<StateDigest> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>({
    sql: `SELECT CAST(id AS CHAR), CAST(room_id AS CHAR), CAST(user_id AS CHAR), body, CAST(created_at AS CHAR) FROM \`${db}\`.${TABLE}`,
    rowsAsArray: true,
  });
  return digestOf(rows as unknown as string[][]);
}

function jsonlDigest(file: string): StateDigest {
  const rows = readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const row = JSON.parse(line) as Record<string, string | number>;
      return COLUMNS.map((c) => String(row[c]));
    });
  return digestOf(rows);
}

async function mongoDigest(database: string, collection: string): Promise<StateDigest> {
  const client = new MongoClient(s.mongodb.uri, { useBigInt64: true });
  try {
    await client.connect();
    const rows: string[][] = [];
    for await (const doc of client.db(database).collection(collection).find({})) {
      rows.push(COLUMNS.map((c) => String(doc[c] as string | number | bigint)));
    }
    return digestOf(rows);
  } finally {
    await client.close();
  }
}

function sameState(a: StateDigest, b: StateDigest): boolean {
  return a.rows === b.rows && a.sha256 === b.sha256;
}

// --- The MariaDB command-line tools: mariadb-dump, mariadb-binlog | mariadb ---------------------------

interface Ran {
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; its stdin from a file when given. Fails with its stderr. */
function run(
  command: string,
  args: string[],
  o: { stdin?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const stdin = o.stdin === undefined ? 'ignore' : openSync(o.stdin, 'r');
    const child = spawn(command, args, { stdio: [stdin, 'pipe', 'pipe'], env: { ...process.env, ...o.env } });
    if (typeof stdin === 'number') closeSync(stdin);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve({ stdout, stderr })
        : reject(
            new Error(`${command} exited with ${code}: ${stderr.trim().split('\n').slice(-5).join('\n')}`),
          ),
    );
  });
}

/** The MariaDB client options for the admin user; the password goes through MYSQL_PWD, not the command line. */
const clientArgs = [
  `--host=${s.mysql.host}`,
  `--port=${s.mysql.port}`,
  `--user=${s.mysql.adminUser}`,
  '--default-character-set=utf8mb4',
];
const clientEnv = { MYSQL_PWD: s.mysql.adminPassword };
const shellQuote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

// --- The history --------------------------------------------------------------------------------------

interface BinlogPoint {
  file: string;
  pos: number;
}

interface History {
  fx: CaptureFixture;
  archiveUrl: string;
  archivePrefix: string;
  /** Where the changes start: the state mariadb-dump saved, and the capture snapshot's state. */
  start: BinlogPoint;
  /** The restore point, the changes up to it, and the source's state there. */
  point: BinlogPoint & { changes: number; state: StateDigest };
  dumpFile: string;
  archive: { events: number; files: number; bytes: number };
}

async function masterStatus(conn: mysql.Connection): Promise<BinlogPoint> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>('SHOW MASTER STATUS');
  const row = rows[0] as { File: string; Position: number } | undefined;
  if (!row) throw new Error('SHOW MASTER STATUS is empty: the source has no binary log');
  return { file: row.File, pos: Number(row.Position) };
}

async function binlogDir(conn: mysql.Connection): Promise<string> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT @@log_bin_basename AS base');
  return dirname(String((rows[0] as { base: string }).base));
}

/**
 * Hard links to the source's binlog files from `from` to `to` in `dir` (the same file system here), so that
 * a PURGE BINARY LOGS by someone else sharing the server cannot take the baseline's input away.
 */
async function keepBinlogs(conn: mysql.Connection, from: string, to: string, dir: string): Promise<void> {
  const source = await binlogDir(conn);
  const [rows] = await conn.query<mysql.RowDataPacket[]>('SHOW BINARY LOGS');
  for (const { Log_name: name } of rows as { Log_name: string }[]) {
    if (name < from || name > to || existsSync(join(dir, name))) continue;
    try {
      linkSync(join(source, name), join(dir, name));
    } catch {
      // another file system: the baseline reads the server's own files
    }
  }
}

async function archivedEvents(
  store: ObjectStore,
  prefix: string,
  db: string,
): Promise<{ events: number; files: number; bytes: number }> {
  let events = 0;
  let files = 0;
  let bytes = 0;
  for await (const entry of listManifestEntries(store, prefix, db, TABLE)) {
    events += Number(entry.rows);
    bytes += Number(entry.bytes);
    files++;
  }
  return { events, files, bytes };
}

/** The changes: INSERTs of new messages, UPDATEs (edits) of random live ones, DELETEs of the oldest. */
async function writeChanges(
  conn: mysql.Connection,
  db: string,
  progress: () => Promise<string>,
): Promise<History['point']> {
  const rnd = random(42);
  const pointAt = Math.ceil(CHANGES * POINT_SHARE);
  let lo = 1;
  let hi = ROWS;
  let done = 0;
  let point: History['point'] | undefined;
  const started = performance.now();
  let lastReport = started;
  for (let statement = 0; done < CHANGES; statement++) {
    const kind = statement % 3;
    const live = hi - lo + 1;
    const n = Math.min(STATEMENT_ROWS, CHANGES - done, kind === 0 ? Number.POSITIVE_INFINITY : live);
    let sql: string;
    if (kind === 0) {
      sql = `INSERT INTO \`${db}\`.${TABLE} VALUES ${Array.from({ length: n }, (_, i) => messageValues(hi + 1 + i)).join(',')}`;
      hi += n;
    } else if (kind === 1) {
      const first = lo + Math.floor(rnd() * (live - n + 1));
      sql = `UPDATE \`${db}\`.${TABLE} SET body = CONCAT('edited ', ${statement}, ': ', LEFT(body, 80)), room_id = (room_id + 1) % 500 WHERE id BETWEEN ${first} AND ${first + n - 1}`;
    } else {
      sql = `DELETE FROM \`${db}\`.${TABLE} WHERE id BETWEEN ${lo} AND ${lo + n - 1}`;
      lo += n;
    }
    const [result] = await conn.query<mysql.ResultSetHeader>(sql);
    if (result.affectedRows !== n) {
      throw new Error(
        `statement ${statement} changed ${result.affectedRows} rows, not ${n}: ${sql.slice(0, 120)}`,
      );
    }
    done += n;
    if (!point && done >= pointAt) {
      point = { ...(await masterStatus(conn)), changes: done, state: await mysqlDigest(conn, db) };
    }
    const now = performance.now();
    if (now - lastReport >= 15_000) {
      console.log(
        `  changes: ${fmt(done)} of ${fmt(CHANGES)} after ${((now - started) / 1000).toFixed(0)} s; ${await progress()}`,
      );
      lastReport = now;
    }
  }
  if (!point) throw new Error('the restore point was never reached');
  return point;
}

/**
 * The history: ROWS messages, a mariadb-dump of them, `tidemark capture` (its initial snapshot), then
 * CHANGES row changes in autocommitted statements, archived by `tidemark tier --only cold` into a local
 * directory until the manifests hold every event. Both daemons are stopped before anything is timed.
 */
async function buildHistory(work: string, admin: Admin, cleanup: (() => Promise<void>)[]): Promise<History> {
  const fx = await captureFixture({
    tables: [DDL],
    configure: (raw) => {
      // Capture batching as shipped (the fixture shortens the linger for tests).
      delete (raw.capture as Record<string, unknown>).batch;
      raw.kafka = { ...(raw.kafka as object), partitions: PARTITIONS };
    },
  });
  cleanup.push(() => deleteTopics(admin, fx.prefix, [`${fx.prefix}.tier.cold`]));
  cleanup.push(() => fx.drop());
  const conn = fx.admin;
  const buildStarted = performance.now();

  for (let first = 1; first <= ROWS; first += LOAD_ROWS) {
    const last = Math.min(ROWS, first + LOAD_ROWS - 1);
    const values = Array.from({ length: last - first + 1 }, (_, i) => messageValues(first + i));
    await conn.query(`INSERT INTO ${TABLE} VALUES ${values.join(',')}`);
  }
  const start = await masterStatus(conn);
  const binlogs = join(work, 'binlog');
  mkdirSync(binlogs);
  await keepBinlogs(conn, start.file, start.file, binlogs);
  const dumpFile = join(work, 'start.sql');
  await run(
    'mariadb-dump',
    [...clientArgs, '--single-transaction', `--result-file=${dumpFile}`, fx.db, TABLE],
    { env: clientEnv },
  ).catch((err: unknown) => {
    throw new Error(`mariadb-dump of the starting state failed: ${errorText(err)}`);
  });
  console.log(
    `  starting state: ${fmt(ROWS)} rows loaded and dumped (${((performance.now() - buildStarted) / 1000).toFixed(1)} s), changes start at ${start.file}:${start.pos}`,
  );

  const archiveDir = join(work, 'archive');
  const archiveUrl = `dir:${archiveDir}`;
  const archivePrefix = uniqueName('bench');
  const store = openObjectStore(archiveUrl);
  const capture = await CaptureProcess.create(fx.raw);
  const tier = await CaptureProcess.create(
    {
      kafka: fx.raw.kafka,
      tier: {
        cold: { url: archiveUrl, prefix: archivePrefix, flushAfterSeconds: 1 },
        retry: { minMs: 200, maxMs: 5_000 },
        topicRefreshSeconds: 2,
      },
    },
    'tier',
  );
  const procs = [capture, tier];
  cleanup.push(async () => {
    for (const proc of procs) await removeProcess(proc, 15_000).catch(() => undefined);
  });
  const alive = () => {
    for (const proc of procs) {
      if (proc.pid !== undefined && cpuSecondsOf(proc.pid) === undefined) {
        throw new Error(`tidemark ${proc.command} exited; its last log lines:\n${logTail(proc)}`);
      }
    }
  };
  const archived = () => archivedEvents(store, archivePrefix, fx.db);

  const snapshotStarted = performance.now();
  capture.start();
  await capture.waitForStatus('streaming', 300_000);
  tier.start(['--only', 'cold']);
  await tier.waitForStatus('tiering', 120_000);
  console.log(
    `  tidemark capture: initial snapshot of ${fmt(ROWS)} rows done in ${((performance.now() - snapshotStarted) / 1000).toFixed(1)} s; tidemark tier --only cold → ${archiveUrl}`,
  );

  const changesStarted = performance.now();
  const point = await writeChanges(conn, fx.db, async () => {
    alive();
    return `${fmt((await archived()).events)} events archived`;
  });
  const changesSeconds = (performance.now() - changesStarted) / 1000;
  await keepBinlogs(conn, start.file, point.file, binlogs);
  console.log(
    `  ${fmt(CHANGES)} changes written in ${changesSeconds.toFixed(1)} s (${fmt(CHANGES / changesSeconds)}/s, ${STATEMENT_ROWS}-row INSERT / UPDATE / DELETE statements); restore point after ${fmt(point.changes)} of them: ${point.file}:${point.pos}, ${fmt(point.state.rows)} rows`,
  );

  let archive = await archived();
  let lastMove = performance.now();
  while (archive.events < EVENTS) {
    alive();
    await sleep(1_000);
    const now = await archived();
    if (now.events !== archive.events) lastMove = performance.now();
    archive = now;
    if (performance.now() - lastMove > STALL_MS) {
      throw new Error(
        `the archive stopped growing at ${fmt(archive.events)} of ${fmt(EVENTS)} events for ${STALL_MS / 1000} s\n--- tidemark capture:\n${logTail(capture)}\n--- tidemark tier:\n${logTail(tier)}`,
      );
    }
  }
  console.log(
    `  archive complete ${((performance.now() - changesStarted) / 1000 - changesSeconds).toFixed(1)} s after the last change: ${fmt(archive.events)} events in ${archive.files} files, ${(archive.bytes / 1024 / 1024).toFixed(1)} MiB${archive.events > EVENTS ? ` (${fmt(archive.events - EVENTS)} sent twice by a capture restart; restores count them once)` : ''}; whole build ${((performance.now() - buildStarted) / 1000).toFixed(0)} s`,
  );
  for (const proc of procs) await stopProcess(proc, 15_000);
  return { fx, archiveUrl, archivePrefix, start, point, dumpFile, archive };
}

// --- Steps --------------------------------------------------------------------------------------------

const targets: Target[] = [];
const failures: string[] = [];

interface Result {
  name: string;
  /** Changes applied to reach the state (for tidemark: the snapshot's rows and the binlog changes). */
  changes: number;
  /** Rows of the state written. */
  rows: number;
  seconds: number;
  /** CPU of the client side: this process for tidemark, mariadb-binlog and mariadb for the baseline. */
  cpuSeconds: number;
  serverCpuSeconds: number;
  server: Server | undefined;
  peakRssMiB: number;
}

async function restoreStep(
  history: History,
  name: string,
  to: string,
  server: Server | undefined,
): Promise<{ result: Result; summary: RestoreSummary }> {
  const config: Config = configSchema.parse({
    tier: { cold: { url: history.archiveUrl, prefix: history.archivePrefix } },
    log: { level: 'warn' },
  });
  let summary: RestoreSummary | undefined;
  // When runRestore starts reading (after its plan) and starts writing (after the fold).
  const at = { begin: 0, reading: 0, writing: 0, end: 0 };
  const progress: Progress = {
    start: () => (at.reading = performance.now()),
    update: () => undefined,
    phase: (phase) => {
      if (phase === 'writing') at.writing = performance.now();
    },
    stop: () => undefined,
  };
  const cpuBefore = server ? serverCpu(server) : 0;
  const m = await step(name, 'changes', async () => {
    at.begin = performance.now();
    summary = await runRestore(
      { config, logger, progress },
      {
        at: `${history.point.file}:${history.point.pos}`,
        tables: [`${history.fx.db}.${TABLE}`],
        where: [],
        to,
        format: 'jsonl',
        force: false,
        allowGaps: false,
        archiveOnly: true,
        // `tidemark restore --max-keys` default: the state stays in memory.
        maxKeys: config.replay.maxKeysInMemory,
      },
    );
    at.end = performance.now();
    return summary.events;
  });
  if (!summary) throw new Error(`${name}: runRestore returned nothing`);
  const part = (from: number, to: number) => ((to - from) / 1000).toFixed(2);
  console.log(
    `  ${name}: plan ${part(at.begin, at.reading)} s, read and fold ${part(at.reading, at.writing)} s (${(summary.bytesRead / 1024 / 1024).toFixed(1)} MiB of archive), write ${part(at.writing, at.end)} s; restored to ${summary.position} (${summary.positionTime})`,
  );
  return {
    summary,
    result: {
      name,
      changes: summary.events,
      rows: summary.tables.reduce((n, t) => n + t.rows, 0),
      seconds: m.seconds,
      cpuSeconds: m.cpuSeconds,
      serverCpuSeconds: server ? serverCpu(server) - cpuBefore : 0,
      server,
      peakRssMiB: m.peakRssMiB,
    },
  };
}

function checkState(what: string, got: StateDigest, want: StateDigest): void {
  if (sameState(got, want)) {
    console.log(
      `  ${what}: the same ${fmt(got.rows)} rows as the source at the point (sha256 ${got.sha256.slice(0, 12)})`,
    );
  } else {
    const message = `${what}: ${fmt(got.rows)} rows, sha256 ${got.sha256.slice(0, 12)}; the source at the point held ${fmt(want.rows)} rows, sha256 ${want.sha256.slice(0, 12)}`;
    failures.push(message);
    console.log(`  WRONG STATE: ${message}`);
  }
}

/** Children's user and system CPU from bash's `times` (its second line). */
function childCpu(times: string): number {
  const line = times.trim().split('\n')[1] ?? '';
  const m = /(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/.exec(line);
  return m ? Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]) : 0;
}

/**
 * The baseline: an empty database given the starting state by loading the mariadb-dump (timed on its own),
 * then the binlog from the start of the changes up to the point piped through `mariadb-binlog` into
 * `mariadb` (timed). Neither is written to the server's binlog (--disable-log-bin, sql_log_bin=0): the
 * replay does less work than a logged one, and the shared server's binlog stays clean.
 */
async function baselineStep(
  history: History,
  conn: mysql.Connection,
  binlogs: string,
  database: string,
): Promise<{ load: Result; replay: Result; binlogBytes: number }> {
  await conn.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4`);
  await settle('mariadb', 30_000);
  let cpuBefore = serverCpu('mariadb');
  const loaded = await step('baseline: load the mariadb-dump of the starting state', 'rows', async () => {
    await run('mariadb', [...clientArgs, '--init-command=SET sql_log_bin=0', database], {
      stdin: history.dumpFile,
      env: clientEnv,
    });
    return ROWS;
  });
  const load: Result = {
    name: loaded.name,
    changes: ROWS,
    rows: ROWS,
    seconds: loaded.seconds,
    cpuSeconds: 0,
    serverCpuSeconds: serverCpu('mariadb') - cpuBefore,
    server: 'mariadb',
    peakRssMiB: 0,
  };

  const source = await binlogDir(conn);
  const [logs] = await conn.query<mysql.RowDataPacket[]>('SHOW BINARY LOGS');
  const sizes = new Map(
    (logs as { Log_name: string; File_size: number }[]).map((l) => [l.Log_name, Number(l.File_size)]),
  );
  const names = [...new Set([...sizes.keys(), history.start.file, history.point.file])]
    .filter((name) => name >= history.start.file && name <= history.point.file)
    .sort();
  const files = names.map((name) => {
    const kept = join(binlogs, name);
    if (existsSync(kept)) return kept;
    if (existsSync(join(source, name))) return join(source, name);
    throw new Error(`baseline: the binlog file ${name} is gone (purged?) and was not kept`);
  });
  const binlogBytes =
    names.length === 1
      ? history.point.pos - history.start.pos
      : names.reduce(
          (n, name, i) =>
            n +
            (i === 0
              ? (sizes.get(name) ?? 0) - history.start.pos
              : i === names.length - 1
                ? history.point.pos
                : (sizes.get(name) ?? 0)),
          0,
        );

  // MariaDB 10.11's mariadb-binlog filters rows events by the database they were written in, before the
  // rewrite: --database names the source.
  const binlogCommand = [
    'mariadb-binlog',
    '--disable-log-bin',
    `--database=${history.fx.db}`,
    `--rewrite-db=${history.fx.db}->${database}`,
    `--start-position=${history.start.pos}`,
    `--stop-position=${history.point.pos}`,
    ...files,
  ];
  const clientCommand = ['mariadb', ...clientArgs, database];
  const script = [
    'set -o pipefail',
    `${binlogCommand.map(shellQuote).join(' ')} | ${clientCommand.map(shellQuote).join(' ')}`,
    'rc=$?',
    'times',
    'exit $rc',
  ].join('\n');
  await settle('mariadb', 30_000);
  cpuBefore = serverCpu('mariadb');
  let clientCpu = 0;
  const replayed = await step('baseline: mariadb-binlog | mariadb', 'changes', async () => {
    const { stdout } = await run('bash', ['-c', script], { env: clientEnv });
    clientCpu = childCpu(stdout);
    return history.point.changes;
  });
  const replay: Result = {
    name: replayed.name,
    changes: history.point.changes,
    rows: history.point.state.rows,
    seconds: replayed.seconds,
    cpuSeconds: clientCpu,
    serverCpuSeconds: serverCpu('mariadb') - cpuBefore,
    server: 'mariadb',
    peakRssMiB: 0,
  };
  console.log(
    `  baseline command: ${binlogCommand.map((a) => (a.includes('/') ? basename(a) : a)).join(' ')} | mariadb ${database}`,
  );
  return { load, replay, binlogBytes };
}

function printResults(title: string, results: Result[]): void {
  console.log(`\n${title}`);
  console.table(
    results.map((r) => ({
      step: r.name,
      'changes applied': fmt(r.changes),
      'rows written': fmt(r.rows),
      seconds: r.seconds.toFixed(2),
      'changes/s': fmt(r.changes / r.seconds),
      'rows/s': fmt(r.rows / r.seconds),
      'cpu s': r.cpuSeconds.toFixed(2),
      'server cpu s': r.server ? `${r.serverCpuSeconds.toFixed(2)} (${r.server})` : '',
      'peak MiB': r.peakRssMiB > 0 ? r.peakRssMiB.toFixed(0) : '',
    })),
  );
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'tidemark-bench-replay-'));
  const kafka = createKafka(
    configSchema.parse({ kafka: { brokers: s.kafka.brokers, clientId: 'tidemark-bench' } }).kafka!,
    logger,
  );
  const admin = kafka.admin();
  await admin.connect();
  const conn = await mysql.createConnection({
    host: s.mysql.host,
    port: s.mysql.port,
    user: s.mysql.adminUser,
    password: s.mysql.adminPassword,
    charset: 'utf8mb4',
  });
  const baselineDb = uniqueName('tm_bench_base');
  const restoreDb = uniqueName('tm_bench_restore');
  const cleanup: (() => Promise<void>)[] = [];
  console.log(
    `a history of ${fmt(EVENTS)} change events of ${TABLE}: capture's snapshot of ${fmt(ROWS)} rows, then ${fmt(CHANGES)} row changes; restored to the binlog position after ${POINT_SHARE * 100}% of the changes`,
  );
  try {
    const h = await buildHistory(work, admin, cleanup);
    const results: Result[] = [];

    // tidemark → a directory (JSON Lines).
    await settle('mariadb', 30_000);
    const dir = join(work, 'restore');
    const toDir = await restoreStep(h, 'tidemark restore → dir (jsonl)', `dir:${dir}`, undefined);
    results.push(toDir.result);
    checkState('tidemark → dir', jsonlDigest(join(dir, `${h.fx.db}.${TABLE}.jsonl`)), h.point.state);
    targets.push({
      what: `restore to a directory in under ${TARGETS.dirSeconds} s`,
      met: toDir.result.seconds < TARGETS.dirSeconds,
      detail: `${toDir.result.seconds.toFixed(2)} s`,
    });

    // The baseline: mariadb-dump load, then mariadb-binlog | mariadb.
    let baseline: Awaited<ReturnType<typeof baselineStep>> | undefined;
    try {
      baseline = await baselineStep(h, conn, join(work, 'binlog'), baselineDb);
      results.push(baseline.load, baseline.replay);
      console.log(
        `  binlog replayed: ${(baseline.binlogBytes / 1024 / 1024).toFixed(1)} MiB from ${h.start.file}:${h.start.pos} to ${h.point.file}:${h.point.pos} (the shared server's other databases' events in it are filtered out by --database)`,
      );
      checkState('baseline', await mysqlDigest(conn, baselineDb), h.point.state);
    } catch (err) {
      failures.push(errorText(err));
      console.log(`  FAILED: ${errorText(err)}`);
    } finally {
      await conn.query(`DROP DATABASE IF EXISTS \`${baselineDb}\``).catch(() => undefined);
    }

    // tidemark → MongoDB (FerretDB).
    let toMongo: Result | undefined;
    try {
      await settle('mariadb', 30_000);
      await settle('ferretdb', 60_000);
      const uri = new URL(s.mongodb.uri);
      uri.pathname = `/${restoreDb}`;
      const restored = await restoreStep(h, 'tidemark restore → FerretDB', uri.toString(), 'ferretdb');
      toMongo = restored.result;
      results.push(toMongo);
      checkState('tidemark → FerretDB', await mongoDigest(restoreDb, `${h.fx.db}.${TABLE}`), h.point.state);
    } catch (err) {
      failures.push(errorText(err));
      console.log(`  FAILED: ${errorText(err)}`);
    }

    printResults(
      `Restore of ${h.fx.db}.${TABLE} to ${h.point.file}:${h.point.pos}: ${fmt(h.point.state.rows)} rows after ${fmt(h.point.changes)} of ${fmt(CHANGES)} binlog changes (tidemark reads the archive only, --archive-only: no Kafka; its changes are the snapshot's ${fmt(ROWS)} rows plus the binlog changes)`,
      results,
    );
    console.log(
      '(cpu s: this process for tidemark, which runs runRestore in-process; mariadb-binlog + mariadb for the baseline. server cpu s: the local server meanwhile, shared with anything else using it)',
    );

    if (baseline) {
      const replay = baseline.replay.seconds;
      const both = baseline.load.seconds + replay;
      console.log('\nRatio: baseline seconds / tidemark seconds (above 1: tidemark is faster)');
      console.log(
        '  tidemark: from the archive alone (snapshot rows + changes) to the written state, the whole runRestore call',
      );
      console.log(
        '  baseline: the binlog replay alone (not written to the binlog again), the starting state already loaded (its load shown apart)',
      );
      for (const r of [toDir.result, toMongo]) {
        if (!r) continue;
        console.log(
          `  ${r.name}: ${(replay / r.seconds).toFixed(2)}× (${replay.toFixed(2)} s / ${r.seconds.toFixed(2)} s); counting the baseline's dump load too: ${(both / r.seconds).toFixed(2)}×`,
        );
      }
      const ratio = replay / toDir.result.seconds;
      targets.push({
        what: 'restore to a directory faster than mariadb-binlog | mariadb (replay alone)',
        met: ratio > TARGETS.ratio,
        detail: `${ratio.toFixed(2)}×`,
      });
    } else {
      targets.push({
        what: 'restore to a directory faster than mariadb-binlog | mariadb',
        met: false,
        detail: 'baseline failed',
      });
    }
  } catch (err) {
    failures.push(errorText(err));
    console.log(`FAILED: ${errorText(err)}`);
  } finally {
    for (const undo of cleanup.reverse())
      await undo().catch((err: unknown) => console.log(`(cleanup: ${errorText(err)})`));
    await admin.disconnect();
    await conn.query(`DROP DATABASE IF EXISTS \`${baselineDb}\``).catch(() => undefined);
    await conn.end();
    await dropMongoDatabases([restoreDb]);
    rmSync(work, { recursive: true, force: true });
  }

  printTargets(targets);
  printFailures(failures);
}

await main();
