// capture under faults, as a real process: SIGKILL at random moments, Kafka down, a standby taking over.
// After each, every source change is in Kafka, exactly once by position, and replays to the source state.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type mysql from 'mysql2/promise';
import { afterEach, describe, expect, it } from 'vitest';
import {
  changeTopic,
  createKafka,
  createLogger,
  SchemaCatalog,
  type ChangeEvent,
} from '../../services/core/index.js';
import { ChangeCollector } from '../support/change-collector.js';
import { dedupeByPosition, replayState, sameState, sourceState } from '../support/change-ledger.js';
import { captureFixture, type CaptureFixture } from '../support/capture-fixture.js';
import { CaptureProcess } from '../support/capture-process.js';
import { localServices } from '../support/local-services.js';
import { Workload, type RowStatements } from '../support/workload.js';

const services = fileURLToPath(new URL('../../deploy/local/services.sh', import.meta.url));
const ROUNDS = Number(process.env.TIDEMARK_FAULT_ROUNDS ?? 6);
const logger = createLogger({ level: 'warn' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const MESSAGES = 'CREATE TABLE messages (id INT PRIMARY KEY, room_id INT NOT NULL, body VARCHAR(100))';

const MESSAGE_CHANGES: RowStatements = {
  insert: (id) => ['INSERT INTO messages VALUES (?, ?, ?)', [id, id % 20, `message ${id}`]],
  update: (id) => [
    'UPDATE messages SET body = ? WHERE id = ?',
    [`edited ${Date.now()} ${Math.random()}`, id],
  ],
  delete: (id) => ['DELETE FROM messages WHERE id = ?', [id]],
};

/** Waits until capture's checkpoint reached the end of the source binlog. */
async function caughtUp(proc: CaptureProcess, admin: mysql.Connection, timeoutMs = 90_000): Promise<void> {
  const [rows] = await admin.query('SHOW MASTER STATUS');
  const end = (rows as { File: string; Position: number }[])[0];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const cp = (await proc.health())?.details?.checkpoint;
    if (
      cp &&
      end &&
      (cp.binlogFile > end.File || (cp.binlogFile === end.File && cp.binlogOffset >= end.Position))
    )
      return;
    if (Date.now() > deadline)
      throw new Error(`capture did not catch up with ${end?.File}:${end?.Position}; log: ${proc.logFile}`);
    await sleep(200);
  }
}

async function verify(
  fx: CaptureFixture,
  workload: Workload,
  initialRows: number,
): Promise<{ duplicates: number; events: number }> {
  const kafka = createKafka(fx.config.kafka!, logger, '-verify');
  const catalog = new SchemaCatalog(kafka, fx.prefix, logger);
  const collector = new ChangeCollector(kafka, catalog);
  try {
    await collector.start([changeTopic(fx.prefix, fx.db, 'messages')]);
    const streamed = (events: ChangeEvent[]) =>
      dedupeByPosition(events).unique.filter((e) => e.op !== 'r').length;
    const collected = await collector.waitFor(
      (all) => streamed(all.map((c) => c.event)) >= workload.committed,
      90_000,
    );
    await sleep(1000); // anything beyond the expected count would be a defect: give it a moment to show up
    const events = collector.events.map((c) => c.event);
    const ledger = dedupeByPosition(events);
    expect(ledger.conflicts).toEqual([]);
    expect(ledger.unique.filter((e) => e.op !== 'r')).toHaveLength(workload.committed);
    expect(ledger.unique.filter((e) => e.op === 'r').length).toBeGreaterThanOrEqual(initialRows);
    const diff = sameState(
      replayState(ledger.unique),
      await sourceState(fx.config.source!, fx.db, 'messages'),
    );
    expect(diff).toEqual({ missing: [], extra: [], different: [] });
    return { duplicates: ledger.duplicates, events: collected.length };
  } finally {
    await collector.stop();
    await catalog.close();
  }
}

describe('capture under faults', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  async function setup(initialRows: number, kafkaRetries?: number) {
    const fx = await captureFixture({
      tables: [MESSAGES],
      configure: (c) => {
        if (kafkaRetries !== undefined)
          c.kafka = { ...(c.kafka as object), retry: { retries: kafkaRetries, initialRetryTimeMs: 100 } };
        c.capture = {
          ...(c.capture as object),
          retry: { minMs: 200, maxMs: 2000 },
          heartbeatSeconds: 1,
          silentAfterSeconds: 3,
        };
      },
    });
    cleanup.push(() => fx.drop());
    if (initialRows > 0) {
      await fx.admin.query(
        `INSERT INTO messages SELECT seq, seq % 20, CONCAT('row ', seq) FROM seq_1_to_${initialRows}`,
      );
    }
    const proc = await CaptureProcess.create(fx.raw);
    cleanup.push(() => proc.kill9());
    return { fx, proc };
  }

  it(`loses nothing and doubles nothing when killed with SIGKILL at random moments (${ROUNDS} kills, one during the snapshot)`, async () => {
    const initialRows = 30_000;
    const { fx, proc } = await setup(initialRows);
    proc.start();
    await proc.waitForStatus('snapshot');
    // Killed once the snapshot's first rows are in Kafka: the retry sends them again at the same positions.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const phase = (await proc.health())?.details?.checkpoint?.phase;
      if (phase === 'snapshot') break;
      if (phase === 'streaming' || Date.now() > deadline)
        throw new Error(
          `no kill between the snapshot's first and last batch (${phase}); log: ${proc.logFile}`,
        );
      await sleep(20);
    }
    await proc.kill9();
    proc.start();
    await proc.waitForStatus('streaming', 120_000);
    // The first process died inside the snapshot; the second took it again from the start, at the same
    // binlog position, so its events repeat the first one's exactly (checked by the ledger below).
    expect(proc.log().match(/snapshot: consistent read opened/g)).toHaveLength(2);
    expect(proc.log()).toContain('"retrying":true');
    expect(proc.log().match(/snapshot: completed/g)).toHaveLength(1);

    const workload = new Workload(fx.admin, MESSAGE_CHANGES, { existing: initialRows });
    workload.start(400);
    for (let round = 0; round < ROUNDS; round++) {
      await sleep(300 + Math.random() * 1200);
      await proc.kill9();
      await sleep(Math.random() * 300);
      proc.start();
    }
    await sleep(1000);
    await workload.stop();
    await caughtUp(proc, fx.admin);
    const result = await verify(fx, workload, initialRows);
    console.log(
      `SIGKILL test: ${ROUNDS + 1} kills, ${workload.committed} source changes, ${result.events} Kafka records, ${result.duplicates} re-sent duplicates (deduplicated by position), 0 lost`,
    );
  }, 300_000);

  it('keeps memory bounded and loses nothing while Kafka is down for 30 s under load', async () => {
    const { fx, proc } = await setup(0);
    proc.start();
    await proc.waitForStatus('streaming', 60_000);
    const workload = new Workload(fx.admin, MESSAGE_CHANGES);
    workload.start(300);
    await sleep(2000);
    execFileSync(services, ['down', 'kafka'], { stdio: 'ignore' });
    cleanup.push(() => Promise.resolve(execFileSync(services, ['up', 'kafka'], { stdio: 'ignore' })));
    let peak = 0;
    for (let t = 0; t < 60; t++) {
      await sleep(500);
      peak = Math.max(peak, proc.rssMiB());
    }
    execFileSync(services, ['up', 'kafka'], { stdio: 'ignore' });
    await sleep(3000);
    await workload.stop();
    await caughtUp(proc, fx.admin, 120_000);
    await verify(fx, workload, 0);
    console.log(
      `Kafka outage test: ${workload.committed} source changes, peak capture RSS ${peak.toFixed(0)} MiB while Kafka was down`,
    );
    expect(peak).toBeLessThan(300);
  }, 300_000);

  it('streams a one-million-row transaction through without holding it in memory', async () => {
    const { fx, proc } = await setup(0);
    await fx.admin.query('CREATE TABLE big (id INT PRIMARY KEY, pad VARCHAR(60))');
    proc.start();
    await proc.waitForStatus('streaming', 60_000);
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, proc.rssMiB())), 200);
    await fx.admin.query(
      `INSERT INTO big SELECT seq, CONCAT('row ', seq, ' ', REPEAT('x', 40)) FROM seq_1_to_1000000`,
    );
    await caughtUp(proc, fx.admin, 240_000);
    clearInterval(sampler);
    // Count what read_committed consumers see, without decoding a million events in the test.
    const kafka = createKafka(fx.config.kafka!, logger, '-count');
    const consumer = kafka.consumer({ groupId: `tidemark-test-count-${fx.prefix}`, readUncommitted: false });
    let count = 0;
    await consumer.connect();
    await consumer.subscribe({ topic: changeTopic(fx.prefix, fx.db, 'big'), fromBeginning: true });
    await consumer.run({
      eachBatch: ({ batch }) => {
        count += batch.messages.length;
        return Promise.resolve();
      },
    });
    const deadline = Date.now() + 120_000;
    while (count < 1_000_000 && Date.now() < deadline) await sleep(200);
    await sleep(500);
    await consumer.disconnect();
    console.log(`1M-row transaction: ${count} events, peak capture RSS ${peak.toFixed(0)} MiB`);
    expect(count).toBe(1_000_000);
    // Held whole, a million decoded rows would take well over a gigabyte.
    expect(peak).toBeLessThan(400);
  }, 400_000);

  it('reconnects with backoff when the source restarts, and loses nothing', async () => {
    const { fx, proc } = await setup(50);
    proc.start();
    await proc.waitForStatus('streaming', 60_000);
    const before = new Workload(fx.admin, MESSAGE_CHANGES, { existing: 50 });
    before.start(200);
    await sleep(1500);
    await before.stop();
    execFileSync(services, ['down', 'mariadb'], { stdio: 'ignore' });
    await sleep(3000);
    execFileSync(services, ['up', 'mariadb'], { stdio: 'ignore' });
    await fx.reconnect();
    const after = new Workload(fx.admin, MESSAGE_CHANGES, { firstNewId: 2_000_000 });
    after.start(200);
    await sleep(1500);
    await after.stop();
    await proc.waitForStatus('streaming', 60_000);
    await caughtUp(proc, fx.admin);
    const total = { committed: before.committed + after.committed } as Workload;
    await verify(fx, total, 50);
    expect(proc.log()).toContain('capture interrupted, resuming from the last checkpoint');
  }, 300_000);

  it('hears heartbeats while the source is idle, and reconnects when the source goes silent', async () => {
    const { fx, proc } = await setup(10);
    proc.start();
    await proc.waitForStatus('streaming', 60_000);
    // Idle for twice the silence threshold: heartbeats keep it streaming.
    await sleep(6000);
    expect((await proc.health())?.status).toBe('streaming');
    expect(proc.log()).not.toContain('capture interrupted');
    // A frozen server sends nothing at all.
    const pid = Number(readFileSync(`${localServices().state}/mariadb/run/mariadbd.pid`, 'utf8'));
    process.kill(pid, 'SIGSTOP');
    try {
      const deadline = Date.now() + 20_000;
      while (!proc.log().includes('sent no event and no heartbeat') && Date.now() < deadline)
        await sleep(200);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect(proc.log()).toContain('sent no event and no heartbeat');
    await proc.waitForStatus('streaming', 60_000);
    await fx.admin.query('INSERT INTO messages VALUES (999999, 1, "after the stall")');
    await caughtUp(proc, fx.admin);
  }, 300_000);

  it('survives Kafka going down while only uncaptured tables change, and resumes when it returns', async () => {
    // Few Kafka retries, so a checkpoint commit fails during the outage rather than waiting it out.
    const { fx, proc } = await setup(10, 1);
    await fx.admin.query('CREATE DATABASE IF NOT EXISTS tm_uncaptured');
    await fx.admin.query(
      'CREATE TABLE IF NOT EXISTS tm_uncaptured.noise (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME)',
    );
    proc.start();
    await proc.waitForStatus('streaming', 60_000);
    execFileSync(services, ['down', 'kafka'], { stdio: 'ignore' });
    cleanup.push(() => Promise.resolve(execFileSync(services, ['up', 'kafka'], { stdio: 'ignore' })));
    // The binlog moves on (other tables), so capture commits checkpoints into a dead Kafka; the failed
    // commit must end the session (and the process must live on to retry), never go unnoticed.
    const interrupted = 'capture interrupted, resuming from the last checkpoint: Kafka transaction failed';
    const deadline = Date.now() + 40_000;
    while (!proc.log().includes(interrupted) && Date.now() < deadline) {
      await fx.admin.query('INSERT INTO tm_uncaptured.noise (at) VALUES (NOW())');
      await sleep(250);
    }
    expect(proc.log()).toContain(interrupted);
    expect(await proc.health()).toBeDefined();
    execFileSync(services, ['up', 'kafka'], { stdio: 'ignore' });
    await proc.waitForStatus('streaming', 90_000);
    await fx.admin.query('INSERT INTO messages VALUES (5000001, 1, "after Kafka came back")');
    await caughtUp(proc, fx.admin, 90_000);
    const workload = { committed: 1 } as Workload;
    await verify(fx, workload, 10);
  }, 300_000);

  it('runs a second instance as a standby that never writes, and lets it take over when the first dies', async () => {
    const { fx, proc } = await setup(100);
    proc.start();
    await proc.waitForStatus('streaming', 60_000);
    const standby = await CaptureProcess.create(fx.raw);
    cleanup.push(() => standby.kill9());
    standby.start();
    await standby.waitForStatus('standby', 30_000);
    const workload = new Workload(fx.admin, MESSAGE_CHANGES, { existing: 100 });
    workload.start(200);
    await sleep(2000);
    expect((await standby.health())?.status).toBe('standby');
    // The active instance reports what it does in Prometheus form; the standby says it is one.
    const metrics = await (await fetch(`http://127.0.0.1:${proc.port}/metrics`)).text();
    const table = `${fx.db}.messages`;
    expect(metrics).toMatch(new RegExp(`tidemark_capture_events_total\\{table="${table}",op="c"\\} [1-9]`));
    expect(metrics).toMatch(/tidemark_capture_state\{state="streaming"\} 1/);
    expect(metrics).toMatch(/tidemark_capture_checkpoint_binlog_offset [1-9]/);
    expect(metrics).toContain('tidemark_capture_kafka_commit_seconds_bucket');
    expect(metrics).toContain('tidemark_capture_lag_seconds');
    expect(metrics).toContain('tidemark_capture_queue_depth');
    const standbyMetrics = await (await fetch(`http://127.0.0.1:${standby.port}/metrics`)).text();
    expect(standbyMetrics).toMatch(/tidemark_capture_state\{state="standby"\} 1/);
    await proc.kill9();
    await standby.waitForStatus('streaming', 60_000);
    await sleep(1500);
    await workload.stop();
    await caughtUp(standby, fx.admin);
    await verify(fx, workload, 100);
  }, 300_000);
});
