// tier under faults, as real processes: SIGKILL at random moments, the object store or MongoDB down for a
// minute under load, two processes sharing a group with one killed, an event that cannot be read. After each,
// the replica equals the source and the archive holds every change exactly once, tiling every partition.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { changeTopic, createKafka, createLogger, HEADER_SCHEMA } from '../../services/core/index.js';
import type { CaptureProcess } from '../support/capture-process.js';
import { Workload, type RowStatements } from '../support/workload.js';
import { tierFixture, type TierFixture, type TierFixtureOptions } from '../support/tier-fixture.js';
import {
  eventually,
  expectArchiveComplete,
  health,
  metric,
  replicaMatchesSource,
  sleep,
} from '../support/tier-verify.js';

const services = fileURLToPath(new URL('../../deploy/local/services.sh', import.meta.url));
const ROUNDS = Number(process.env.TIDEMARK_FAULT_ROUNDS ?? 6);
const OUTAGE_MS = Number(process.env.TIDEMARK_OUTAGE_SECONDS ?? 60) * 1000;
// Row changes per second during the outages: FerretDB 1.x on SQLite applies about 150 updates/s on this
// machine, so a heavier load would measure FerretDB's backlog rather than tier.
const OUTAGE_LOAD = 100;

/** Changes of the tier fixture's messages table, all inside the hot window. */
const CHAT_CHANGES: RowStatements = {
  insert: (id) => [
    'INSERT INTO messages VALUES (?, ?, ?, ?, ?, NULL, NULL, UTC_TIMESTAMP(6))',
    [id, id % 20, id % 50, `message ${id} 你好`, `${id}.5`],
  ],
  update: (id) => ['UPDATE messages SET body = ? WHERE id = ?', [`edited ${Math.random()}`, id]],
  delete: (id) => ['DELETE FROM messages WHERE id = ?', [id]],
};
const logger = createLogger({ level: 'warn' });

describe('tier under faults', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  async function setup(o: TierFixtureOptions = {}): Promise<{ t: TierFixture; workload: Workload }> {
    const t = await tierFixture(o);
    cleanup.push(() => t.drop());
    t.capture.start();
    await t.capture.waitForStatus('streaming');
    return { t, workload: new Workload(t.fx.admin, CHAT_CHANGES, { firstNewId: 1 }) };
  }

  const started = Date.now();
  const step = (what: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${what}`);

  async function expectReplicaComplete(t: TierFixture): Promise<void> {
    await eventually(
      'replica of messages equal to the source',
      () => replicaMatchesSource(t, 'messages'),
      180_000,
    );
  }

  it(`loses nothing and doubles nothing when tier is killed with SIGKILL at random moments (${ROUNDS} kills)`, async () => {
    const { t, workload } = await setup();
    const tier = await t.newTier();
    tier.start();
    workload.start(400);
    for (let round = 0; round < ROUNDS; round++) {
      await sleep(1000 + Math.random() * 2500);
      await tier.kill9();
      await sleep(Math.random() * 500);
      tier.start();
    }
    await sleep(2000);
    await workload.stop();
    await expectReplicaComplete(t);
    await expectArchiveComplete(t, ['messages']);
    console.log(
      `tier SIGKILL test: ${ROUNDS} kills, ${workload.committed} source changes, replica and archive exact`,
    );
  }, 420_000);

  it('carries the hot replica on while the object store is down, and completes the archive after', async () => {
    const { t, workload } = await setup({ store: 's3' });
    const tier = await t.newTier((raw) => {
      raw.alerts = { storeFailingSeconds: 5 };
    });
    tier.start();
    workload.start(OUTAGE_LOAD);
    await sleep(2000);
    // Serving (a loaded machine can take longer than that to start a process), and no alert yet.
    expect(
      await eventually('tier serving /metrics', () =>
        metric(tier, 'tidemark_alert_firing{alert="ArchiveUploadFailing"}'),
      ),
    ).toBe(0);
    execFileSync(services, ['down', 'minio'], { stdio: 'ignore' });
    cleanup.push(() => Promise.resolve(execFileSync(services, ['up', 'minio'], { stdio: 'ignore' })));
    const downSince = Date.now();
    step('minio down');
    await sleep(OUTAGE_MS / 2);
    await workload.stop();
    step('workload stopped');
    // While the store is still down: the replica catches up, health names the failing archive.
    await expectReplicaComplete(t);
    const during = await health(tier);
    expect(during.healthy).toBe(false);
    expect(JSON.stringify(during.details.cold)).toMatch(/lastFailure/);
    // The alert fired (log line and metric), and only for the archive.
    await eventually('ArchiveUploadFailing', async () =>
      (await metric(tier, 'tidemark_alert_firing{alert="ArchiveUploadFailing"}')) === 1 ? true : undefined,
    );
    expect(await metric(tier, 'tidemark_alert_firing{alert="HotReplicaFailing"}')).toBe(0);
    expect(readFileSync(tier.logFile, 'utf8')).toMatch(
      /"alert":"ArchiveUploadFailing".*"msg":"alert ArchiveUploadFailing: writes to the archive/,
    );
    step('replica complete');
    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - downSince)));
    execFileSync(services, ['up', 'minio'], { stdio: 'ignore' });
    await expectArchiveComplete(t, ['messages']);
    await eventually('health to recover', async () => ((await health(tier)).healthy ? true : undefined));
    await eventually('the alert resolved', async () =>
      (await metric(tier, 'tidemark_alert_firing{alert="ArchiveUploadFailing"}')) === 0 ? true : undefined,
    );
  }, 420_000);

  it('carries the archive on while MongoDB is down, and completes the replica after', async () => {
    const { t, workload } = await setup();
    const tier = await t.newTier();
    tier.start();
    workload.start(OUTAGE_LOAD);
    await sleep(2000);
    execFileSync(services, ['down', 'ferretdb'], { stdio: 'ignore' });
    cleanup.push(() => Promise.resolve(execFileSync(services, ['up', 'ferretdb'], { stdio: 'ignore' })));
    const downSince = Date.now();
    await sleep(OUTAGE_MS / 2);
    await workload.stop();
    await expectArchiveComplete(t, ['messages']);
    expect((await health(tier)).healthy).toBe(false);
    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - downSince)));
    execFileSync(services, ['up', 'ferretdb'], { stdio: 'ignore' });
    await expectReplicaComplete(t);
  }, 420_000);

  it('shares the partitions between two processes, one killed and restarted mid-load, with the same result', async () => {
    const { t, workload } = await setup({ partitions: 2 });
    const a = await t.newTier();
    const b = await t.newTier();
    a.start();
    b.start();
    workload.start(400);
    await sleep(4000);
    await b.kill9();
    await sleep(3000);
    b.start();
    await sleep(4000);
    await workload.stop();
    await expectReplicaComplete(t);
    await expectArchiveComplete(t, ['messages']);
    const assigned = (p: CaptureProcess) => p.log().includes('joined the consumer group');
    expect(assigned(a) && assigned(b)).toBe(true);
  }, 420_000);

  it('stops a partition on an event it cannot read, naming topic, partition and offset, and goes on with the rest', async () => {
    const { t } = await setup();
    const tier = await t.newTier();
    tier.start();
    await t.fx.admin.query("INSERT INTO users VALUES (1, 'ann', 1, NULL)");
    await eventually('users replicated', () => replicaMatchesSource(t, 'users'));
    const kafka = createKafka(t.fx.config.kafka!, logger, '-bad');
    const producer = kafka.producer();
    await producer.connect();
    const topic = changeTopic(t.fx.prefix, t.fx.db, 'messages');
    const [sent] = await producer.send({
      topic,
      messages: [
        { key: '["1"]', value: Buffer.from('not avro'), headers: { [HEADER_SCHEMA]: 'ffffffffffffffff' } },
      ],
    });
    await producer.disconnect();
    const offset = sent?.baseOffset ?? '?';
    await eventually(
      'the partition to stop',
      async () => ((await health(tier)).healthy ? undefined : true),
      120_000,
    );
    const report = JSON.stringify((await health(tier)).details);
    expect(report).toContain(`${topic}[0]`);
    expect(tier.log()).toContain(`cannot read the event at ${topic} partition 0 offset ${offset}`);
    // Other tables go on.
    await t.fx.admin.query("INSERT INTO users VALUES (2, 'bob', 2, NULL)");
    await eventually('users replicated after the stop', () => replicaMatchesSource(t, 'users'));
  });
});
