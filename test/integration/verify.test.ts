// `tidemark verify` on a real encrypted archive in MinIO (MariaDB → capture → Kafka → tier): the drill passes
// while traffic runs, with masked and excluded columns; then each kind of damage — a changed source row, a
// corrupted object, a deleted object, a missing manifest, a missing or wrong key — fails it, naming the
// object, the key or the row.

import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { configSchema, createLogger, type AlertNotice, type Config } from '../../services/core/index.js';
import { createSnapshot } from '../../services/replay/snapshots.js';
import { runVerify, type VerifyReport } from '../../services/replay/verify.js';
import { CaptureProcess } from '../support/capture-process.js';
import { eventually } from '../support/eventually.js';
import { metric } from '../support/tier-verify.js';
import { tierFixture, type TierFixture } from '../support/tier-fixture.js';

const logger = createLogger({ level: 'warn' });
const CLI = fileURLToPath(new URL('../../services/cli/index.ts', import.meta.url));

describe('verify', () => {
  let t: TierFixture;
  let tier: CaptureProcess;
  let config: Config;
  let raw: Record<string, unknown>;
  const key = randomBytes(32).toString('hex');

  const verify = (cfg: Config, drill: boolean, waitSeconds = 90): Promise<VerifyReport> =>
    runVerify({ config: cfg, logger }, { tables: [], integrity: true, drill, waitSeconds });
  const someObject = async (prefix: string) => {
    for await (const info of t.store.list(prefix)) return info.key;
    throw new Error(`nothing under ${prefix}`);
  };
  const integrityOnly = (cfg: Config = config) =>
    runVerify({ config: cfg, logger }, { tables: [], integrity: true, drill: false });
  /** Inserts, updates and deletes over the three tables. */
  const traffic = async (from: number, n: number) => {
    const { admin } = t.fx;
    for (let i = from; i < from + n; i++) {
      await admin.query('INSERT INTO messages VALUES (?, ?, ?, ?, ?, \'{"a": 1}\', ?, NOW(6))', [
        i,
        i % 5,
        i % 9,
        `message ${i} 你好 👋`,
        `${i}.125`,
        Buffer.from([i % 256, 0]),
      ]);
      if (i % 3 === 0) await admin.query('UPDATE users SET karma = karma + 1 WHERE id = ?', [i % 20]);
      if (i % 7 === 0) await admin.query('DELETE FROM messages WHERE id = ?', [i - 5]);
      if (i % 11 === 0) {
        await admin.query('INSERT IGNORE INTO memberships VALUES (?, ?, ?)', [i % 5, i % 13, 'member']);
      }
    }
  };

  beforeAll(async () => {
    t = await tierFixture({
      store: 's3',
      partitions: 2,
      configureTier: (tierConfig) => {
        (tierConfig.cold as Record<string, unknown>).encryption = { keyId: 'k1', keys: { k1: key } };
        (tierConfig.cold as Record<string, unknown>).rotate = { maxEvents: 150, maxSpanSeconds: 5 };
      },
      configureCapture: (c, db) => {
        const source = c.source as Record<string, unknown>;
        source.maskKey = 'a mask key of at least thirty-two characters';
        source.columns = {
          [`${db}.users`]: { mask: { name: 'hash' } },
          [`${db}.messages`]: { exclude: ['attachment'] },
        };
      },
    });
    const { admin } = t.fx;
    for (let i = 0; i < 20; i++) {
      await admin.query('INSERT INTO users VALUES (?, ?, ?, NULL)', [i, `user ${i} 😀`, BigInt(i) << 50n]);
    }
    await traffic(1, 200);
    t.capture.start();
    await t.capture.waitForStatus('streaming');
    tier = await t.newTier();
    tier.start();
    raw = { ...t.fx.raw, tier: t.tierRaw.tier };
    config = configSchema.parse(structuredClone(raw));
    await traffic(201, 250);
    // A snapshot in the middle, so its files are checked and the drill's restore starts from it.
    await eventually('a snapshot of the archive', async () => {
      const s = await createSnapshot({ config, logger }, { tables: [], at: 'latest' });
      return s.manifest.tables.length === 3 ? s : undefined;
    });
    await traffic(451, 150);
  }, 300_000);

  afterAll(async () => {
    await t?.drop();
  });

  it('passes a drill while traffic runs: every row restored equals the source at a consistent read', async () => {
    const running = traffic(601, 150);
    const report = await verify(config, true);
    await running;
    expect(report.problems).toEqual([]);
    expect(report.passed).toBe(true);
    const integrity = report.integrity!;
    expect(integrity.tables.map((x) => x.table).sort()).toEqual(
      ['memberships', 'messages', 'users'].map((x) => `${t.fx.db}.${x}`),
    );
    expect(integrity.snapshots.length).toBeGreaterThan(0);
    expect(integrity.filesChecked).toBe(
      integrity.tables.reduce((n, x) => n + x.files, 0) +
        integrity.snapshots.reduce((n, s) => n + s.files, 0),
    );
    const drill = report.drill!;
    expect(drill.tables).toHaveLength(3);
    for (const d of drill.tables) {
      expect(d.sourceRows, d.table).toBeGreaterThan(0);
      expect(d.restoredRows, d.table).toBe(d.sourceRows);
      expect(d.equal, d.table).toBe(d.sourceRows);
    }
  }, 300_000);

  it('names the row and column a restore gets wrong', async () => {
    const { admin } = t.fx;
    // A change the binlog never sees: the source now differs from anything the archive can restore.
    const [[{ karma }]] = (await admin.query(
      'SELECT CAST(karma AS CHAR) AS karma FROM users WHERE id = 7',
    )) as unknown as [[{ karma: string }]];
    await admin.query('SET SESSION sql_log_bin = 0');
    await admin.query('UPDATE users SET karma = -1 WHERE id = 7');
    await admin.query('SET SESSION sql_log_bin = 1');
    await traffic(751, 10);
    const report = await verify(config, true);
    expect(report.passed).toBe(false);
    const users = report.drill!.tables.find((x) => x.table === `${t.fx.db}.users`)!;
    expect(users.counts).toEqual({ missing: 0, extra: 0, differing: 1 });
    expect(users.differing).toEqual([{ key: '7', columns: ['karma'] }]);
    expect(report.problems).toEqual([
      `drill: ${t.fx.db}.users: 1 rows differ, 0 missing from the restore, 0 only in the restore`,
    ]);
    await admin.query('SET SESSION sql_log_bin = 0');
    await admin.query('UPDATE users SET karma = ? WHERE id = 7', [karma]);
    await admin.query('SET SESSION sql_log_bin = 1');
  }, 300_000);

  it('says the archive is behind when the cold tier stops, within the wait it was given', async () => {
    await tier.stop();
    await traffic(801, 5);
    const report = await verify(config, true, 4);
    expect(report.drillError?.code).toBe('ARCHIVE_BEHIND');
    expect(report.drillError?.message).toMatch(/not archived from position/);
    tier = await t.newTier();
    tier.start();
  }, 300_000);

  it('fails on a corrupted, a deleted or an unlisted object and on a missing or wrong key, naming it', async () => {
    const clean = await integrityOnly();
    expect(clean.problems).toEqual([]);
    await tier.stop(); // nothing is written while objects are damaged and put back
    const messages = clean.integrity!.tables.find((x) => x.table.endsWith('.messages'))!;
    expect(messages.files).toBeGreaterThan(2);
    const keys: string[] = [];
    for await (const info of t.store.list(`${t.archivePrefix}/changes/${messages.table}/`))
      keys.push(info.key);
    const victim = keys[1]!;
    const original = await t.store.get(victim);

    // One byte flipped in the middle of the object.
    const damaged = Buffer.from(original);
    damaged[damaged.length >> 1] = (damaged[damaged.length >> 1] ?? 0) ^ 0xff;
    await t.store.put(victim, damaged);
    const corrupt = await integrityOnly();
    expect(corrupt.passed).toBe(false);
    expect(corrupt.integrity!.problems.map((p) => [p.code, p.table])).toEqual([
      ['OBJECT_CORRUPT', messages.table],
    ]);
    expect(corrupt.integrity!.problems[0]!.object).toContain(victim);
    // The command says the same, with exit code 1.
    const file = join(tmpdir(), `tidemark-verify-${t.fx.prefix}.yaml`);
    writeFileSync(file, stringify(raw));
    const cli = spawnSync(process.execPath, ['--import', 'tsx', CLI, 'verify', '--config', file], {
      encoding: 'utf8',
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    expect(cli.status, cli.stderr).toBe(1);
    expect(cli.stdout).toContain(victim);
    expect(cli.stdout).toMatch(/FAIL: 1 problem/);

    // Deleted.
    await t.store.delete([victim]);
    const deleted = await integrityOnly();
    expect(deleted.integrity!.problems.map((p) => p.code)).toEqual(['OBJECT_NOT_FOUND']);
    expect(deleted.problems[0]).toContain(victim);
    await t.store.put(victim, original);
    expect((await integrityOnly()).passed).toBe(true);

    // Its manifest entry gone: the offsets it held are a gap, and the object is listed as unknown.
    const manifest = victim.replace('/changes/', '/manifests/').replace(/\/hour=\d\d\//, '/');
    const manifestBody = await t.store.get(manifest);
    await t.store.delete([manifest]);
    const gap = await integrityOnly();
    expect(gap.integrity!.problems.map((p) => p.code)).toEqual(['ARCHIVE_GAP']);
    expect(gap.problems[0]).toMatch(/offsets \d+–\d+ are missing between/);
    expect(gap.integrity!.tables.find((x) => x.table === messages.table)!.unlisted).toEqual([victim]);
    await t.store.put(manifest, manifestBody);

    // Keys: none configured, or another key under the same id.
    const noKeys = structuredClone(config);
    delete noKeys.tier!.cold!.encryption;
    const missing = await integrityOnly(noKeys);
    expect(new Set(missing.integrity!.problems.map((p) => p.code))).toEqual(new Set(['KEY_MISSING']));
    expect(missing.integrity!.problems).toHaveLength(missing.integrity!.filesChecked);
    const wrong = structuredClone(config);
    wrong.tier!.cold!.encryption = { keyId: 'k1', keys: { k1: randomBytes(32).toString('hex') } };
    const wrongKey = await integrityOnly(wrong);
    expect(new Set(wrongKey.integrity!.problems.map((p) => p.code))).toEqual(new Set(['KEY_WRONG']));

    expect((await integrityOnly()).passed).toBe(true);
  }, 300_000);

  it('the scheduler verifies on its cadence: a damaged object raises VerifyFailed (metric, health, webhook), repaired it resolves', async () => {
    const notices: AlertNotice[] = [];
    const server = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        notices.push(JSON.parse(text) as AlertNotice);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    tier = await t.newTier();
    tier.start();
    const schedulerRaw = structuredClone(raw) as Record<string, Record<string, unknown>>;
    schedulerRaw.replay = {
      verify: { everyHours: 0.002, integrity: 'all', drill: true, waitSeconds: 60 },
    };
    schedulerRaw.alerts = { webhook: { url: `http://127.0.0.1:${port}/hook`, retries: 2 } };
    const scheduler = await CaptureProcess.create(schedulerRaw, 'scheduler');
    const victim = await someObject(`${t.archivePrefix}/changes/${t.fx.db}.users/`);
    const original = await t.store.get(victim);
    try {
      scheduler.start();
      await eventually(
        'a passing verification with a drill',
        async () =>
          (await metric(scheduler, 'tidemark_verify_last_success_timestamp_seconds{kind="drill"}')) > 0
            ? true
            : undefined,
        120_000,
      );
      expect(await metric(scheduler, 'tidemark_verify_passed{kind="integrity"}')).toBe(1);
      expect(await metric(scheduler, 'tidemark_verify_files_checked_total')).toBeGreaterThan(0);

      const damaged = Buffer.from(original);
      damaged[10] = (damaged[10] ?? 0) ^ 0x5a;
      await t.store.put(victim, damaged);
      const firing = await eventually(
        'a VerifyFailed notice',
        () => Promise.resolve(notices.find((n) => n.alert === 'VerifyFailed' && n.status === 'firing')),
        120_000,
      );
      expect(firing).toMatchObject({ source: 'tidemark', service: 'scheduler', severity: 'critical' });
      expect(firing.message).toContain(victim);
      expect(firing.check).toMatch(/tidemark verify --drill/);
      expect(await metric(scheduler, 'tidemark_verify_passed{kind="integrity"}')).toBe(0);
      expect(await metric(scheduler, 'tidemark_alert_firing{alert="VerifyFailed"}')).toBe(1);
      expect(await scheduler.health()).toMatchObject({ healthy: false, status: 'verification failed' });

      await t.store.put(victim, original);
      await eventually(
        'a resolved notice',
        () => Promise.resolve(notices.find((n) => n.alert === 'VerifyFailed' && n.status === 'resolved')),
        120_000,
      );
      expect(await metric(scheduler, 'tidemark_alert_firing{alert="VerifyFailed"}')).toBe(0);
      expect((await scheduler.health())?.healthy).toBe(true);
    } finally {
      await t.store.put(victim, original);
      await scheduler.stop();
      await new Promise<void>((r) => server.close(() => r()));
    }
  }, 400_000);
});
