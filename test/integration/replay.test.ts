// Restore end to end against the real servers: a chat workload (inserts, updates, deletes, a primary-key
// change, DDL, a mass DELETE) captured and archived by real processes, consistent snapshots of the source
// taken at known binlog positions along the way, and restores to those positions (and times) compared value
// by value with what the source held there.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema, createLogger, type Config, type Row } from '../../services/core/index.js';
import { listChanges } from '../../services/replay/changes.js';
import { describePlan, planFor, runRestore, type RestoreRequest } from '../../services/replay/restore.js';
import { createSnapshot, showSnapshot, snapshots } from '../../services/replay/snapshots.js';
import { writeResult } from '../../services/query/output.js';
import { QuerySession } from '../../services/query/session.js';
import { restoredState, sameState, sourceSnapshot, sourceState } from '../support/change-ledger.js';
import { rejectionOf } from '../support/error-of.js';
import { localServices, uniqueName } from '../support/local-services.js';
import { comparableState, diffStates, replicaContents } from '../support/tier-checks.js';
import { tierFixture, type TierFixture } from '../support/tier-fixture.js';
import { eventually, KEYS, JSON_COLUMNS, kafkaEvents, metric, sleep } from '../support/tier-verify.js';
import { CaptureProcess } from '../support/capture-process.js';

const CLI = fileURLToPath(new URL('../../services/cli/index.ts', import.meta.url));
import { archiveContents } from '../support/tier-checks.js';
import { dedupeByPosition } from '../support/change-ledger.js';

const logger = createLogger({ level: 'warn' });
const TABLES = ['messages', 'users', 'memberships'];

interface Point {
  at: string;
  states: Map<string, Map<string, Row>>;
}

/** A small deterministic random source, so a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('restore', () => {
  let t: TierFixture;
  let tier: CaptureProcess;
  let config: Config;
  const points: Point[] = [];
  let timePoint: { ms: number; states: Map<string, Map<string, Row>> };
  const out = mkdtempSync(join(tmpdir(), 'tidemark-restore-test-'));
  const request = (over: Partial<RestoreRequest>): RestoreRequest => ({
    at: 'latest',
    tables: [],
    where: [],
    to: undefined,
    format: 'avro',
    force: false,
    allowGaps: false,
    archiveOnly: false,
    maxKeys: 1_000_000,
    ...over,
  });
  const restoreToDir = async (name: string, over: Partial<RestoreRequest>) => {
    const dir = join(out, name);
    const summary = await runRestore({ config, logger }, request({ to: `dir:${dir}`, ...over }));
    return { dir, summary };
  };
  const expectRestored = async (dir: string, states: Map<string, Map<string, Row>>, tables = TABLES) => {
    for (const table of tables) {
      const got = await restoredState(dir, `${t.fx.db}.${table}.avro`, KEYS[table]!);
      expect(sameState(got, states.get(table)!), `${table} in ${dir}`).toEqual({
        missing: [],
        extra: [],
        different: [],
      });
    }
  };

  beforeAll(async () => {
    t = await tierFixture({ partitions: 2 });
    config = configSchema.parse(structuredClone(t.tierRaw));
    const { admin } = t.fx;
    for (let i = 1; i <= 200; i++) {
      await admin.query('INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6))', [
        i,
        i % 5,
        9_007_199_254_740_993n + BigInt(i),
        `hi ${i} 你好 👋`,
        `${i}.5`,
        JSON.stringify({ n: i }),
        Buffer.from([i % 256, 0]),
      ]);
    }
    for (let i = 1; i <= 30; i++) {
      await admin.query('INSERT INTO users VALUES (?, ?, ?, ?)', [
        i,
        `user ${i}`,
        BigInt(i) * 1_000_000_000_000n,
        '2026-03-01 10:03:12.123456',
      ]);
      await admin.query("INSERT INTO memberships VALUES (?, ?, 'member')", [i % 5, i]);
    }
    t.capture.start();
    await t.capture.waitForStatus('streaming');
    tier = await t.newTier();
    tier.start();

    const rnd = random(42);
    const pick = (n: number) => 1 + Math.floor(rnd() * n);
    let nextId = 1000;
    for (let round = 0; round < 10; round++) {
      // A multi-statement transaction across tables.
      await admin.query('BEGIN');
      for (let i = 0; i < 15; i++) {
        await admin.query('INSERT INTO messages VALUES (?, ?, ?, ?, NULL, ?, NULL, UTC_TIMESTAMP(6))', [
          nextId++,
          pick(5) - 1,
          pick(30),
          `round ${round} ${i}`,
          JSON.stringify({ round, tags: ['x', i] }),
        ]);
      }
      await admin.query(
        'UPDATE messages SET body = CONCAT(body, ?), amount = amount + 0.000001 WHERE id % 7 = ?',
        [` e${round}`, round % 7],
      );
      await admin.query('UPDATE users SET karma = karma + 1 WHERE id = ?', [pick(30)]);
      await admin.query('COMMIT');
      // Single-statement transactions.
      await admin.query('DELETE FROM messages WHERE id = ?', [pick(200)]);
      await admin.query(
        "UPDATE memberships SET role = IF(role = 'owner', 'member', 'owner') WHERE user_id = ?",
        [pick(30)],
      );
      await admin.query('INSERT IGNORE INTO memberships VALUES (?, ?, ?)', [
        pick(5) + 10,
        pick(30),
        'member',
      ]);
      if (round === 3) {
        await admin.query('ALTER TABLE users ADD COLUMN bio VARCHAR(100) NULL');
        await admin.query("UPDATE users SET bio = 'hello 👋' WHERE id = 1");
      }
      if (round === 5) await admin.query('UPDATE users SET id = id + 1000 WHERE id = 7'); // primary key change
      if (round === 6) await admin.query('DELETE FROM messages WHERE room_id = 3'); // the bad mass DELETE
      if (round === 8) await admin.query('FLUSH BINARY LOGS');
      const snap = await sourceSnapshot(t.fx.config.source!, t.fx.db, TABLES);
      points.push({ at: `${snap.binlogFile}:${snap.binlogOffset}`, states: snap.states });
      if (round === 7) {
        // A time point: binlog times are whole seconds, so the next change waits for the next second.
        const ms = Date.now();
        timePoint = { ms, states: snap.states };
        await sleep(1000 - (ms % 1000) + 1100);
      }
    }
  }, 600_000);

  afterAll(async () => {
    await t?.drop();
  });

  it('restores to the latest change from archive and Kafka together, equal to the source now', async () => {
    // Capture publishes within moments; until it has, the newest changes are not in Kafka yet.
    let attempt = 0;
    const { dir, summary } = await eventually('restore of the latest state equal to the source', async () => {
      const now = new Map<string, Map<string, Row>>();
      for (const table of TABLES) now.set(table, await sourceState(t.fx.config.source!, t.fx.db, table));
      const restored = await restoreToDir(`latest-${attempt++}`, {});
      await expectRestored(restored.dir, now);
      return restored;
    });
    expect(summary.position).not.toBeNull();
    expect(JSON.parse(readFileSync(join(dir, 'restore.json'), 'utf8'))).toMatchObject({
      position: summary.position,
    });
  });

  it('restores the archive to every recorded position exactly, and a time between two of them', async () => {
    // Wait until the archive holds everything Kafka does.
    const inKafka = await kafkaEvents(t, TABLES);
    for (const table of TABLES) {
      const expected = dedupeByPosition(
        inKafka.filter((c) => c.event.source.table === table).map((c) => c.event),
      );
      await eventually(`archive of ${table}`, async () => {
        const archived = await archiveContents(t.store, t.archivePrefix, t.fx.db, table);
        return dedupeByPosition(archived.events).unique.length >= expected.unique.length || undefined;
      });
    }
    for (const [i, p] of points.entries()) {
      const { dir, summary } = await restoreToDir(`pos-${i}`, { at: p.at });
      await expectRestored(dir, p.states);
      // Everything is archived: the archive alone served it.
      expect(summary.fromKafka).toBe(0);
    }
    // The same with a state that spills to disk after 50 keys.
    const spilled = await restoreToDir('spilled', { at: points[8]!.at, maxKeys: 50 });
    await expectRestored(spilled.dir, points[8]!.states);
    const { dir } = await restoreToDir('time', { at: new Date(timePoint.ms).toISOString() });
    await expectRestored(dir, timePoint.states);
  });

  it('takes synthetic snapshots, and restores across them exactly as from the initial snapshot', async () => {
    const ctx = { config, logger };
    const first = await createSnapshot(ctx, { tables: [], at: points[4]!.at });
    expect(first.created).toBe(true);
    expect(first.manifest.base).toBeNull();
    for (const table of TABLES) {
      const entry = first.manifest.tables.find((x) => x.table === `${t.fx.db}.${table}`)!;
      expect(Number(entry.rows), table).toBe(points[4]!.states.get(table)!.size);
    }
    expect((await createSnapshot(ctx, { tables: [], at: points[4]!.at })).created).toBe(false);
    const second = await createSnapshot(ctx, { tables: [], at: 'latest' });
    expect(second.created).toBe(true);
    expect(second.manifest.base).toBe(first.manifest.id);
    expect((await snapshots(ctx)).map((x) => x.id)).toEqual([first.manifest.id, second.manifest.id]);
    expect((await showSnapshot(ctx, first.manifest.id)).pos).toBe(first.manifest.pos);

    // Each restore starts from the newest snapshot at or before its point, and equals the source there.
    const cases: [number, string | undefined][] = [
      [2, undefined],
      [4, first.manifest.id],
      [7, first.manifest.id],
      [9, second.manifest.id],
    ];
    for (const [i, base] of cases) {
      const { plan } = await planFor(ctx, request({ at: points[i]!.at }));
      for (const tp of plan.tables) expect(tp.base?.snapshot.id, `${tp.table} at point ${i}`).toBe(base);
      const { dir } = await restoreToDir(`snap-${i}`, { at: points[i]!.at });
      await expectRestored(dir, points[i]!.states);
    }
    const missing = await rejectionOf(showSnapshot(ctx, 'nope'));
    expect(missing.hint).toContain(first.manifest.id);
  });

  it('lists the changes of a window by transaction, and restores to just before the mass DELETE', async () => {
    const ctx = { config, logger };
    const messages = `${t.fx.db}.messages`;
    const result = await listChanges(ctx, {
      tables: [messages],
      from: points[5]!.at,
      to: points[6]!.at,
      where: [],
      ops: ['d'],
      archiveOnly: false,
      limit: 100,
    });
    const mass = result.transactions.reduce((a, b) => (b.counts.d > a.counts.d ? b : a));
    expect(mass.counts.d).toBeGreaterThan(10);
    expect(mass.events.every((e) => e.before?.room_id === 3)).toBe(true);
    const { dir } = await restoreToDir('before-delete', {
      at: mass.restoreBefore,
      tables: [messages],
      where: ['room_id = 3'],
    });
    const room3 = await restoredState(dir, `${messages}.avro`, ['id']);
    expect(room3.size).toBe(mass.counts.d);
    const counted = await listChanges(ctx, {
      tables: [messages],
      from: points[5]!.at,
      to: points[6]!.at,
      where: ['room_id = 3'],
      ops: ['d'],
      archiveOnly: true,
      limit: 0,
    });
    const room3Deletes = result.transactions.flatMap((g) => g.events).filter((e) => e.before?.room_id === 3);
    expect(counted.totalEvents).toBe(room3Deletes.length);
  });

  it('restores one room with --where, and into MongoDB and MySQL', async () => {
    const p = points[6]!; // after the mass DELETE of room 3
    const before = points[5]!; // just before it
    const messages = `${t.fx.db}.messages`;
    const { dir } = await restoreToDir('room-3', {
      at: before.at,
      tables: [messages],
      where: ['room_id = 3'],
    });
    const got = await restoredState(dir, `${messages}.avro`, ['id']);
    const room3 = new Map([...before.states.get('messages')!].filter(([, r]) => r.room_id === 3));
    expect(room3.size).toBeGreaterThan(10);
    expect(sameState(got, room3)).toEqual({ missing: [], extra: [], different: [] });
    expect(existsSync(join(dir, `${t.fx.db}.users.avro`))).toBe(false);

    const s = localServices();
    const mongoDb = uniqueName('tm_restore');
    await runRestore(
      { config, logger },
      request({ at: p.at, to: `${s.mongodb.uri.replace(/\/[^/]*$/, '')}/${mongoDb}` }),
    );
    try {
      for (const table of TABLES) {
        const replica = await replicaContents(
          s.mongodb.uri,
          mongoDb,
          `${t.fx.db}.${table}`,
          KEYS[table]!,
          JSON_COLUMNS[table],
        );
        const expected = comparableState(p.states.get(table)!, KEYS[table]!, JSON_COLUMNS[table]);
        expect(diffStates(replica.rows, expected), `MongoDB ${table}`).toEqual({
          missing: [],
          extra: [],
          different: [],
        });
      }
    } finally {
      const { MongoClient } = await import('mongodb');
      const client = new MongoClient(s.mongodb.uri);
      await client.connect();
      await client.db(mongoDb).dropDatabase();
      await client.close();
    }

    const side = uniqueName('tm_side');
    const mysqlUri = `mysql://${s.mysql.adminUser}:${encodeURIComponent(s.mysql.adminPassword)}@${s.mysql.host}:${s.mysql.port}/${side}`;
    await runRestore({ config, logger }, request({ at: p.at, to: mysqlUri }));
    try {
      const admin = { ...t.fx.config.source!, user: s.mysql.adminUser, password: s.mysql.adminPassword };
      for (const table of TABLES) {
        const got = await sourceState(admin, side, table);
        expect(sameState(got, p.states.get(table)!), `MySQL ${table}`).toEqual({
          missing: [],
          extra: [],
          different: [],
        });
      }
      // The target holds the tables now: a second restore is refused, nothing written.
      const refused = await rejectionOf(runRestore({ config, logger }, request({ at: p.at, to: mysqlUri })));
      expect(refused.code).toBe('TARGET_NOT_EMPTY');
      expect(refused.message).toContain(`${side}.messages`);
      // --force keeps what it replaces aside first.
      const forced = await runRestore(
        { config, logger },
        request({ at: points[2]!.at, to: mysqlUri, force: true }),
      );
      const aside = forced.tables.find((x) => x.table === `${t.fx.db}.users`)!.keptAside!;
      expect(aside).toMatch(/users_before_\d{8}T\d{6}Z$/);
      const asideTable = aside.split('.').at(-1)!;
      expect(sameState(await sourceState(admin, side, asideTable), p.states.get('users')!)).toEqual({
        missing: [],
        extra: [],
        different: [],
      });
      expect(sameState(await sourceState(admin, side, 'users'), points[2]!.states.get('users')!)).toEqual({
        missing: [],
        extra: [],
        different: [],
      });
    } finally {
      await t.fx.admin.query(`DROP DATABASE IF EXISTS \`${side}\``);
    }
  });

  it('plans without touching anything, and refuses bad input with what to do', async () => {
    const dir = join(out, 'planned');
    const { plan } = await planFor({ config, logger }, request({ at: points[2]!.at, to: `dir:${dir}` }));
    const text = describePlan(plan, `dir:${dir}`);
    expect(text).toContain(`${t.fx.db}.messages`);
    expect(text).toMatch(/partition 0: \d+ change files/);
    expect(existsSync(dir)).toBe(false);

    const early = await rejectionOf(restoreToDir('early', { at: '2001-01-01T00:00:00Z' }));
    expect(early.code).toBe('OUT_OF_WINDOW');
    expect(early.message).toMatch(/can be restored from \d{4}-.* to \d{4}-/);
    const unknown = await rejectionOf(restoreToDir('unknown', { tables: [`${t.fx.db}.nope`] }));
    expect(unknown.code).toBe('BAD_ARGUMENT');
    expect(unknown.hint).toContain(`${t.fx.db}.messages`);
    const column = await rejectionOf(
      restoreToDir('column', { tables: [`${t.fx.db}.users`], where: ['room = 1'] }),
    );
    expect(column.code).toBe('BAD_ARGUMENT');
    expect(column.hint).toContain('karma');
    for (const name of ['early', 'unknown', 'column']) expect(existsSync(join(out, name))).toBe(false);

    // A damaged data file is named, and nothing is written.
    const messagesDir = `${t.archivePrefix}/changes/${t.fx.db}.messages`;
    let victim = '';
    for await (const info of t.store.list(messagesDir)) {
      victim = info.key;
      break;
    }
    const body = await t.store.get(victim);
    const damaged = Buffer.from(body);
    damaged.writeUInt8(damaged.readUInt8(damaged.length - 5) ^ 0xff, damaged.length - 5);
    await t.store.put(victim, damaged);
    try {
      const corrupt = await rejectionOf(
        // Before the first snapshot, so the change files are read.
        restoreToDir('corrupt', { at: points[1]!.at, tables: [`${t.fx.db}.messages`], archiveOnly: true }),
      );
      expect(corrupt.code).toBe('OBJECT_CORRUPT');
      expect(corrupt.message).toContain(victim);
      expect(readdirSync(out)).not.toContain('corrupt');
    } finally {
      await t.store.put(victim, body);
    }

    // A missing file is a gap, named by partition and offsets.
    const manifests = `${t.archivePrefix}/manifests/${t.fx.db}.messages`;
    const keys: string[] = [];
    for await (const info of t.store.list(manifests)) keys.push(info.key);
    const middle = keys.filter((k) => /\/0-/.test(k))[0]!;
    const saved = await t.store.get(middle);
    await t.store.delete([middle]);
    try {
      const gap = await rejectionOf(
        restoreToDir('gap', { at: points[1]!.at, tables: [`${t.fx.db}.messages`], archiveOnly: true }),
      );
      expect(gap.code).toBe('ARCHIVE_GAP');
      expect(gap.message).toMatch(/partition 0: offsets 0–\d+ are not in the archive/);
      const allowed = await restoreToDir('gap-allowed', {
        at: points[1]!.at,
        tables: [`${t.fx.db}.messages`],
        archiveOnly: true,
        allowGaps: true,
      });
      expect(allowed.summary.tables[0]!.rows).toBeGreaterThan(0);
    } finally {
      await t.store.put(middle, saved);
    }
  });

  it('runs as commands: the scheduler takes snapshots on its cadence, restore --plan and bad input exit codes', async () => {
    const raw = structuredClone(t.tierRaw);
    raw.replay = { snapshots: { everyHours: 0.001 } };
    const scheduler = await CaptureProcess.create(raw, 'scheduler');
    const before = (await snapshots({ config, logger })).length;
    // Something new to snapshot (with nothing new, the scheduler writes nothing).
    await t.fx.admin.query("INSERT INTO users (id, name, karma) VALUES (999, 'late', 1)");
    scheduler.start();
    try {
      await eventually('a snapshot by the scheduler', async () =>
        (await snapshots({ config, logger })).length > before ? true : undefined,
      );
      await eventually('scheduler metrics', async () =>
        (await metric(scheduler, 'tidemark_snapshot_runs_total')) > 0 ? true : undefined,
      );
      expect((await scheduler.health())?.healthy).toBe(true);
    } finally {
      await scheduler.stop();
    }

    const cli = (args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args, '--config', scheduler.configFile], {
        encoding: 'utf8',
        env: { ...process.env, FORCE_COLOR: '0' },
      });
    const dir = join(out, 'cli-plan');
    const plan = cli(['restore', '--at', points[3]!.at, '--to', `dir:${dir}`, '--plan']);
    expect(plan.status, plan.stderr).toBe(0);
    expect(plan.stdout).toContain(`${t.fx.db}.messages`);
    expect(existsSync(dir)).toBe(false);
    const restored = cli([
      'restore',
      '--at',
      points[3]!.at,
      '--to',
      `dir:${dir}`,
      '--tables',
      `${t.fx.db}.users`,
    ]);
    expect(restored.status, restored.stderr).toBe(0);
    expect(JSON.parse(restored.stdout.trim().split('\n').at(-1)!)).toMatchObject({
      tables: [{ rows: points[3]!.states.get('users')!.size }],
    });
    const badWhere = cli(['restore', '--to', `dir:${dir}-x`, '--where', 'nope = 1']);
    expect(badWhere.status).toBe(2);
    expect(badWhere.stderr).toContain('no restored table has a column "nope"');
    const list = cli(['snapshot', 'list']);
    expect(list.status, list.stderr).toBe(0);
    expect(list.stdout.trim().split('\n').length).toBeGreaterThanOrEqual(3);
    const changes = cli([
      'changes',
      '--tables',
      `${t.fx.db}.messages`,
      '--from',
      points[5]!.at,
      '--to',
      points[6]!.at,
      '--op',
      'd',
      '--count',
    ]);
    expect(changes.status, changes.stderr).toBe(0);
    expect(changes.stdout).toMatch(/\d+ changes in \d+ transactions/);
  });

  it('reads the changes not archived yet from Kafka', async () => {
    // With the archiver stopped, the newest changes exist only in Kafka.
    await tier.stop();
    await t.fx.admin.query("UPDATE users SET name = 'only in kafka' WHERE id = 1");
    await t.fx.admin.query('DELETE FROM memberships WHERE user_id = 2');
    const now = new Map<string, Map<string, Row>>();
    for (const table of TABLES) now.set(table, await sourceState(t.fx.config.source!, t.fx.db, table));
    let attempt = 0;
    const { summary } = await eventually('a restore with the Kafka tail equal to the source', async () => {
      const restored = await restoreToDir(`tail-${attempt++}`, {});
      await expectRestored(restored.dir, now);
      return restored;
    });
    expect(summary.fromKafka).toBeGreaterThan(0);
  });
});

describe('restore of an encrypted archive in S3', () => {
  it('restores with the key that wrote it from MinIO, and names a missing or wrong key', async () => {
    const key = randomBytes(32).toString('hex');
    // In MinIO: restores read S3 archives through the same object-store interface.
    const t = await tierFixture({
      store: 's3',
      configureTier: (tier) => {
        (tier.cold as Record<string, unknown>).encryption = { keyId: 'k1', keys: { k1: key } };
      },
    });
    try {
      const { admin } = t.fx;
      for (let i = 1; i <= 20; i++) {
        await admin.query("INSERT INTO users VALUES (?, ?, ?, '2026-03-01 10:03:12.5')", [
          i,
          `u${i}`,
          BigInt(i) << 40n,
        ]);
      }
      t.capture.start();
      await t.capture.waitForStatus('streaming');
      const tier = await t.newTier();
      tier.start();
      await admin.query('DELETE FROM users WHERE id > 15');
      const expected = await sourceState(t.fx.config.source!, t.fx.db, 'users');
      const config = configSchema.parse(structuredClone(t.tierRaw));
      const users = `${t.fx.db}.users`;
      const out = mkdtempSync(join(tmpdir(), 'tidemark-restore-enc-'));
      const restore = (cfg: Config, name: string, archiveOnly = true) =>
        runRestore(
          { config: cfg, logger },
          {
            at: 'latest',
            tables: [users],
            where: [],
            to: `dir:${join(out, name)}`,
            format: 'avro',
            force: false,
            allowGaps: false,
            archiveOnly,
            maxKeys: 1000,
          },
        );
      await eventually('the encrypted archive restores to the source', async () => {
        const name = `ok-${Date.now()}`;
        // With Kafka: the archive alone cannot tell whether its newest transaction is complete.
        await restore(config, name, false);
        const got = await restoredState(join(out, name), `${users}.avro`, ['id']);
        const diff = sameState(got, expected);
        return diff.missing.length + diff.extra.length + diff.different.length === 0 ? got : undefined;
      });
      // tidemark query reads the same archive, in decode workers and in process alike.
      const count = async (cfg: Config, workersFrom: number) => {
        const sql = `SELECT count(*) AS n, sum(karma) AS karma FROM changes."${users}" WHERE _op = 'r'`;
        const session = await QuerySession.open({ config: cfg, logger }, { sql, workersFrom }, true);
        try {
          const lines: string[] = [];
          await writeResult(session, sql, 'jsonl', (l) => lines.push(l));
          return JSON.parse(lines[0]!) as { n: string; karma: string };
        } finally {
          await session.close();
        }
      };
      const inserted = { n: '20', karma: String(((20n * 21n) / 2n) << 40n) };
      expect(await count(config, 0)).toEqual(inserted);
      expect(await count(config, Infinity)).toEqual(inserted);
      const noKeys = structuredClone(config);
      delete noKeys.tier!.cold!.encryption;
      expect((await rejectionOf(restore(noKeys, 'no-key'))).code).toBe('KEY_MISSING');
      for (const workersFrom of [0, Infinity]) {
        expect((await rejectionOf(count(noKeys, workersFrom))).code).toBe('KEY_MISSING');
      }
      const wrong = structuredClone(config);
      wrong.tier!.cold!.encryption = { keyId: 'k1', keys: { k1: randomBytes(32).toString('hex') } };
      const refused = await rejectionOf(restore(wrong, 'wrong-key'));
      expect(refused.code).toBe('KEY_WRONG');
      expect((await rejectionOf(count(wrong, 0))).code).toBe('KEY_WRONG');
      expect(existsSync(join(out, 'wrong-key'))).toBe(false);
    } finally {
      await t.drop();
    }
  });
});
