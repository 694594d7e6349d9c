// Capture benchmark: binlog → Kafka end to end, beside the raw decode speed of the binlog client over the
// very same binlog range, measured in one run. Two workloads: 1M rows as 1000-row INSERTs, and 100k
// single-row transactions.

import ZongJi, { type AnyBinlogEvent } from '@vlasky/zongji';
import { execFileSync } from 'node:child_process';
import mysql from 'mysql2/promise';
import { KafkaSink } from '../../../services/capture/kafka-sink.js';
import { configSchema, createKafka, createLogger } from '../../../services/core/index.js';
import { CaptureProcess } from '../../support/capture-process.js';
import { localServices, uniqueName } from '../../support/local-services.js';
import { cpuSecondsOf, everyServerCpu, peakRssOf, serverCpuSince, threadCpuOf } from '../process-stats.js';
import { report, type Measurement } from '../measure.js';

const ROWS_BATCHED = Number(process.env.BENCH_ROWS ?? 1_000_000);
const SINGLE_TXNS = Number(process.env.BENCH_TXNS ?? 100_000);
const s = localServices();
const logger = createLogger({ level: 'warn' });

interface BinlogRange {
  file: string;
  start: number;
  end: number;
}

async function masterStatus(conn: mysql.Connection): Promise<{ file: string; pos: number }> {
  const [rows] = await conn.query('SHOW MASTER STATUS');
  const r = (rows as { File: string; Position: number }[])[0]!;
  return { file: r.File, pos: Number(r.Position) };
}

/** Peak RSS and CPU of this process while `work` runs, sampled every 50 ms. */
async function measured(name: string, rows: number, work: () => Promise<void>): Promise<Measurement> {
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  await work();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  clearInterval(sampler);
  const used = process.cpuUsage(cpu);
  return {
    name,
    count: rows,
    unit: 'rows',
    seconds,
    cpuSeconds: (used.user + used.system) / 1e6,
    peakRssMiB: peak / 1024 / 1024,
  };
}

/** Raw client decode: zongji with the same options capture uses, counting rows until the range's end. */
function rawDecode(range: BinlogRange, db: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const zongji = new ZongJi({
      host: s.mysql.host,
      port: s.mysql.port,
      user: s.mysql.user,
      password: s.mysql.password,
      dateStrings: true,
    });
    let rows = 0;
    zongji.on('binlog', (e: AnyBinlogEvent) => {
      const name = e.getEventName();
      if (name === 'writerows') rows += (e as unknown as { rows: unknown[] }).rows.length;
      if (
        (name === 'xid' || name === 'query') &&
        e.nextPosition >= range.end &&
        zongji.options.filename === range.file
      ) {
        zongji.stop();
        resolve(rows);
      }
    });
    zongji.on('error', reject);
    zongji.start({
      serverId: 40_000 + Math.floor(Math.random() * 1000),
      filename: range.file,
      position: range.start,
      includeEvents: ['tablemap', 'writerows', 'xid', 'query', 'rotate'],
      includeSchema: { [db]: true },
    });
  });
}

function mariadbBinlogDecode(range: BinlogRange): void {
  const datadir = `${process.env.TIDEMARK_LOCAL_STATE ?? `${process.env.HOME}/.local/state/tidemark/local`}/mariadb/binlog`;
  execFileSync('sh', [
    '-c',
    `mariadb-binlog --base64-output=decode-rows -v --start-position=${range.start} --stop-position=${range.end} ${datadir}/${range.file} > /dev/null`,
  ]);
}

/**
 * `tidemark capture` as its own process (the built CLI, as deployed, with the README's heap cap), from the range's
 * start until its checkpoint reaches the range's end. Counted from when it began streaming (after start-up:
 * checks, fencing, reading the checkpoint); CPU and peak memory are the capture process's alone.
 */
async function captureRange(
  range: BinlogRange,
  db: string,
  prefix: string,
  name: string,
  rows: number,
): Promise<Measurement> {
  const raw = {
    source: {
      host: s.mysql.host,
      port: s.mysql.port,
      user: s.mysql.user,
      password: s.mysql.password,
      serverId: 41_000 + Math.floor(Math.random() * 1000),
      tables: { include: [`${db}.*`] },
    },
    kafka: { brokers: s.kafka.brokers, topicPrefix: prefix },
    capture: { id: prefix, snapshot: 'never' },
  };
  const config = configSchema.parse(raw);
  // Seed the checkpoint at the start of the range, as if capture had stopped there.
  const seed = new KafkaSink({ kafka: config.kafka!, captureId: prefix, logger });
  await seed.connect();
  await seed.commit({
    captureId: prefix,
    phase: 'streaming',
    binlogFile: range.file,
    binlogOffset: range.start,
    gtidSet: null,
    tsMs: Date.now(),
    writtenMs: Date.now(),
    snapshot: null,
  });
  await seed.close();
  const proc = await CaptureProcess.create(raw, 'capture', { built: true });
  proc.start();
  try {
    await proc.waitForStatus('streaming', 120_000);
    const cpuAtStart = cpuSecondsOf(proc.pid) ?? 0;
    const threadsAtStart = threadCpuOf(proc.pid);
    const serversAtStart = everyServerCpu();
    const startedMs = Date.now();
    let endedMs: number;
    // Polled every 100 ms (a busier probe costs the machine CPU); the end is the time capture wrote the
    // checkpoint that reached the range's end.
    for (;;) {
      const cp = (await proc.health())?.details?.checkpoint as
        { binlogFile: string; binlogOffset: number; writtenMs: number } | undefined;
      if (cp && cp.binlogFile === range.file && cp.binlogOffset >= range.end) {
        endedMs = cp.writtenMs;
        break;
      }
      if (cpuSecondsOf(proc.pid) === undefined) throw new Error(`capture exited; log: ${proc.logFile}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const threads = threadCpuOf(proc.pid);
    const servers = serverCpuSince(serversAtStart);
    if (threads && threadsAtStart) {
      // The same work has cost from 6 to 10 CPU-seconds from run to run: which threads it went to, and
      // what the servers (Kafka storing, MariaDB sending the binlog) used on the same two cores meanwhile.
      console.log(
        `  (${name}: CPU of its main thread ${(threads.main - threadsAtStart.main).toFixed(2)} s, of its other threads — the Kafka producer thread, V8's compiler and collector helpers — ${(threads.others - threadsAtStart.others).toFixed(2)} s; server CPU meanwhile: ${servers})`,
      );
    }
    return {
      name,
      count: rows,
      unit: 'rows',
      seconds: (endedMs - startedMs) / 1000,
      cpuSeconds: (cpuSecondsOf(proc.pid) ?? 0) - cpuAtStart,
      peakRssMiB: peakRssOf(proc.pid),
    };
  } finally {
    await proc.stop();
  }
}

async function writeWorkload(
  admin: mysql.Connection,
  db: string,
  kind: 'batched' | 'single',
): Promise<BinlogRange> {
  await admin.query(`CREATE DATABASE \`${db}\``);
  await admin.query(
    `CREATE TABLE \`${db}\`.messages (id BIGINT PRIMARY KEY, room_id INT NOT NULL, user_id INT NOT NULL, body VARCHAR(200), created_at DATETIME(6) NOT NULL)`,
  );
  await admin.query(`GRANT SELECT ON \`${db}\`.* TO '${s.mysql.user}'@'127.0.0.1'`);
  await admin.query('FLUSH BINARY LOGS');
  const start = await masterStatus(admin);
  const row = (id: number) =>
    `(${id}, ${id % 500}, ${id % 10_000}, 'message number ${id} in a busy classroom chat 你好 👋', '2024-03-01 10:03:11.${String(id % 1_000_000).padStart(6, '0')}')`;
  if (kind === 'batched') {
    for (let first = 1; first <= ROWS_BATCHED; first += 1000) {
      const values = Array.from({ length: 1000 }, (_, i) => row(first + i)).join(',');
      await admin.query(`INSERT INTO \`${db}\`.messages VALUES ${values}`);
    }
  } else {
    for (let first = 1; first <= SINGLE_TXNS; first += 500) {
      const statements = Array.from(
        { length: 500 },
        (_, i) => `INSERT INTO \`${db}\`.messages VALUES ${row(first + i)}`,
      ).join(';');
      await admin.query(statements);
    }
  }
  const end = await masterStatus(admin);
  if (end.file !== start.file) throw new Error('the workload rotated the binlog; raise max_binlog_size');
  return { file: start.file, start: start.pos, end: end.pos };
}

async function main(): Promise<void> {
  // Capture runs as deployed: the compiled CLI in its own process.
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  const admin = await mysql.createConnection({
    host: s.mysql.host,
    port: s.mysql.port,
    user: s.mysql.adminUser,
    password: s.mysql.adminPassword,
    multipleStatements: true,
  });
  const kafka = createKafka(
    configSchema.parse({ kafka: { brokers: s.kafka.brokers, clientId: 'tidemark-bench' } }).kafka!,
    logger,
  );
  const kafkaAdmin = kafka.admin();
  await kafkaAdmin.connect();
  for (const [kind, rows, label] of [
    ['batched', ROWS_BATCHED, `${ROWS_BATCHED.toLocaleString('en-US')} rows as 1000-row INSERTs`],
    ['single', SINGLE_TXNS, `${SINGLE_TXNS.toLocaleString('en-US')} single-row transactions`],
  ] as const) {
    const db = uniqueName('tm_bench');
    const prefix = uniqueName('tmbench');
    try {
      const range = await writeWorkload(admin, db, kind);
      const mb = ((range.end - range.start) / 1024 / 1024).toFixed(0);
      console.log(`\n${label}: ${mb} MiB of binlog (${range.file}:${range.start}-${range.end})`);
      const baseline = await measured('raw zongji decode (baseline)', rows, async () => {
        const n = await rawDecode(range, db);
        if (n !== rows) throw new Error(`raw decode saw ${n} rows, expected ${rows}`);
      });
      const server = await measured('mariadb-binlog -v decode (server tool)', rows, () =>
        Promise.resolve(mariadbBinlogDecode(range)),
      );
      const capture = await captureRange(range, db, prefix, 'tidemark capture → Kafka (own process)', rows);
      report(label, [baseline, server, capture], baseline);
      console.log(
        '(peak MiB: the baselines are this benchmark process, which also holds the generated workload; capture is its own process)',
      );
      const target = kind === 'batched' ? 150_000 : 60_000;
      console.log(
        `capture: ${Math.round(rows / capture.seconds).toLocaleString('en-US')} rows/s (target ≥ ${target.toLocaleString('en-US')}), ${(capture.count / capture.seconds / (baseline.count / baseline.seconds)).toFixed(2)}× raw decode, peak RSS ${capture.peakRssMiB.toFixed(0)} MiB (target < 300)`,
      );
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS \`${db}\``);
      const topics = (await kafkaAdmin.listTopics()).filter((t) => t.startsWith(`${prefix}.`));
      if (topics.length > 0) await kafkaAdmin.deleteTopics({ topics });
    }
  }
  await kafkaAdmin.disconnect();
  await admin.end();
}

await main();
