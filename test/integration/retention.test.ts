// Retention on a real archive in MinIO (MariaDB → capture → Kafka → tier): the plan names what goes and the
// window that remains; apply deletes exactly that, recorded in the audit log; afterwards the archive still
// verifies, every point of the window restores to the source's state at it, an older kept snapshot restores
// to its own point, and a point between it and the window is refused, naming the gap.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema, createLogger, type Config, type Row } from '../../services/core/index.js';
import { openArchive, tableEntries } from '../../services/replay/archive-reader.js';
import { listAudit } from '../../services/replay/audit.js';
import { applyRetention, planRetention, type RetentionPolicy } from '../../services/replay/retention.js';
import { archiveReaches } from '../../services/replay/drill.js';
import { runRestore, withKafka, type RestoreRequest } from '../../services/replay/restore.js';
import { listSnapshots } from '../../services/replay/snapshot-catalog.js';
import { createSnapshot } from '../../services/replay/snapshots.js';
import { parseTargetPoint, type TargetPoint } from '../../services/replay/target-point.js';
import { runVerify } from '../../services/replay/verify.js';
import type { CaptureProcess } from '../support/capture-process.js';
import { restoredState, sameState, sourceSnapshot } from '../support/change-ledger.js';
import { rejectionOf } from '../support/error-of.js';
import { eventually } from '../support/eventually.js';
import { tierFixture, type TierFixture } from '../support/tier-fixture.js';

const logger = createLogger({ level: 'warn' });
const TABLES = ['messages', 'users'];
const KEYS: Record<string, string[]> = { messages: ['id'], users: ['id'] };
const actor = { user: 'ops-alice', host: 'test', pid: process.pid, command: 'tidemark retention apply' };

describe('retention', () => {
  let t: TierFixture;
  let tier: CaptureProcess;
  let config: Config;
  const out = mkdtempSync(join(tmpdir(), 'tidemark-retention-'));
  /** Source states at consistent reads: before the first snapshot, at it, between, and in the window. */
  const points: { at: string; states: Map<string, Map<string, Row>> }[] = [];
  const ids: string[] = [];

  const traffic = async (from: number, n: number) => {
    const { admin } = t.fx;
    for (let i = from; i < from + n; i++) {
      await admin.query('INSERT INTO messages VALUES (?, ?, ?, ?, NULL, NULL, NULL, NOW(6))', [
        i,
        i % 4,
        i % 6,
        `m${i}`,
      ]);
      if (i % 2 === 0) await admin.query('UPDATE users SET karma = karma + ? WHERE id = ?', [i, i % 6]);
      if (i % 5 === 0) await admin.query('DELETE FROM messages WHERE id = ?', [i - 3]);
    }
  };
  const point = async () => {
    const snap = await sourceSnapshot(t.fx.config.source!, t.fx.db, TABLES);
    points.push({ at: `${snap.binlogFile}:${snap.binlogOffset}`, states: snap.states });
  };
  /** A snapshot at the last point, once the archive holds everything up to it. */
  const snapshot = async () => {
    const at = points.at(-1)!.at;
    const target = parseTargetPoint(at) as TargetPoint & { kind: 'position' };
    const tables = TABLES.map((x) => `${t.fx.db}.${x}`);
    await eventually(`the archive reaching ${at}`, () =>
      withKafka({ config, logger }, false, async (kafka) =>
        (await archiveReaches({ config, logger }, kafka!, tables, target)).reached ? true : undefined,
      ),
    );
    const r = await createSnapshot({ config, logger }, { tables: [], at });
    expect(r.manifest.tables).toHaveLength(TABLES.length);
    ids.push(r.manifest.id);
  };
  const restore = (at: string, name: string) =>
    runRestore({ config, logger }, {
      at,
      tables: TABLES.map((x) => `${t.fx.db}.${x}`),
      where: [],
      to: `dir:${join(out, name)}`,
      format: 'avro',
      force: false,
      allowGaps: false,
      archiveOnly: false,
      maxKeys: 10_000,
      reason: `test ${name}`,
    } satisfies RestoreRequest);
  const expectRestores = async (at: string, expected: Map<string, Map<string, Row>>, name: string) => {
    await restore(at, name);
    for (const table of TABLES) {
      const got = await restoredState(join(out, name), `${t.fx.db}.${table}.avro`, KEYS[table]!);
      expect(sameState(got, expected.get(table)!), `${name}: ${table}`).toEqual({
        missing: [],
        extra: [],
        different: [],
      });
    }
  };

  beforeAll(async () => {
    t = await tierFixture({
      store: 's3',
      partitions: 2,
      configureTier: (tierConfig) => {
        (tierConfig.cold as Record<string, unknown>).rotate = { maxEvents: 40, maxSpanSeconds: 3 };
      },
    });
    for (let i = 0; i < 6; i++)
      await t.fx.admin.query('INSERT INTO users VALUES (?, ?, 0, NULL)', [i, `u${i}`]);
    t.capture.start();
    await t.capture.waitForStatus('streaming');
    tier = await t.newTier();
    tier.start();
    config = configSchema.parse({ ...structuredClone(t.tierRaw), source: t.fx.raw.source });
    await traffic(1, 120);
    await point(); // 0: the first snapshot's point
    await snapshot();
    await traffic(121, 120);
    await point(); // 1: between the snapshots
    await traffic(241, 120);
    await point(); // 2: the second snapshot's point, the window's base
    await snapshot();
    await traffic(361, 120);
    await point(); // 3: inside the window
    await traffic(481, 60);
    await point(); // 4: the newest
  }, 300_000);

  afterAll(async () => {
    await tier?.stop();
    await t?.drop();
  });

  it('plans, applies, and leaves an archive that verifies and restores every point of its window', async () => {
    const archive = openArchive(config);
    const policy: RetentionPolicy = {
      snapshots: { last: 2, daily: 0, weekly: 0, monthly: 0, yearly: 0 },
      changesDays: 0,
    };
    const before = new Map<string, string[]>();
    for (const table of TABLES) {
      const name = `${t.fx.db}.${table}`;
      before.set(
        name,
        (await tableEntries(archive, name)).map((e) => e.object_key),
      );
    }
    const plan = await planRetention(archive, policy);
    // Both snapshots stay (last 2); the newer is the window's base.
    expect(plan.removeSnapshots).toBe(0);
    const messages = plan.tables.find((x) => x.table === `${t.fx.db}.messages`)!;
    expect(messages.base?.id).toBe(ids[1]);
    expect(messages.remove.length).toBeGreaterThan(2);
    expect(messages.windowFrom?.pos).toBe(messages.base?.pos);
    for (const e of messages.remove) expect(e.last_pos < messages.base!.pos).toBe(true);

    const result = await applyRetention(archive, plan, actor, 'shorten the window for the test');
    expect(result.deletedObjects).toBe(2 * plan.tables.reduce((n, x) => n + x.remove.length, 0));
    for (const table of plan.tables) {
      const left = await tableEntries(archive, table.table);
      // Exactly the planned files went (the tier may have added new ones meanwhile).
      const leftKeys = new Set(left.map((e) => e.object_key));
      expect(
        before
          .get(table.table)!
          .filter((k) => !leftKeys.has(k))
          .sort(),
        table.table,
      ).toEqual(table.remove.map((e) => e.object_key).sort());
      // Every partition still reaches back to the base: its first file starts at or before it.
      const firsts = new Map<number, string>();
      for (const e of left) if (!firsts.has(e.partition)) firsts.set(e.partition, e.first_pos);
      for (const [, pos] of firsts) expect(pos <= table.base!.pos).toBe(true);
    }
    // Nothing left to delete by the same policy.
    const again = await planRetention(archive, policy);
    expect(again.tables.reduce((n, x) => n + x.remove.length, 0)).toBe(0);

    const verified = await runVerify({ config, logger }, { tables: [], integrity: true, drill: false });
    expect(verified.problems).toEqual([]);
    expect(verified.integrity!.tables.find((x) => x.table === `${t.fx.db}.messages`)!.joinedSnapshot).toBe(
      ids[1],
    );

    // The window: its base, a point inside, the newest.
    await expectRestores(points[2]!.at, points[2]!.states, 'base');
    await expectRestores(points[3]!.at, points[3]!.states, 'inside');
    await expectRestores(points[4]!.at, points[4]!.states, 'newest');
    // The older snapshot restores to its own point, and a point between it and the window is refused.
    const first = (await listSnapshots(archive)).find((s) => s.id === ids[0])!;
    await expectRestores(first.pos, points[0]!.states, 'first-snapshot');
    const refused = await rejectionOf(restore(points[1]!.at, 'between'));
    expect(refused.code).toBe('ARCHIVE_GAP');
    expect(refused.message).toMatch(/are not in the archive/);

    // The audit log: the delete with who and why, every restore with its outcome.
    const audit = await listAudit(archive);
    const apply = audit.filter((a) => a.action === 'retention.apply');
    expect(apply).toHaveLength(1);
    expect(apply[0]).toMatchObject({
      actor: { user: 'ops-alice' },
      reason: 'shorten the window for the test',
    });
    expect(apply[0]!.details.deletedObjects).toBe(result.deletedObjects);
    const restores = audit.filter((a) => a.action === 'restore');
    expect(restores.map((r) => [r.reason, r.outcome])).toEqual([
      ['test base', 'done'],
      ['test inside', 'done'],
      ['test newest', 'done'],
      ['test first-snapshot', 'done'],
      ['test between', 'failed'],
    ]);
    expect(restores[4]!.error).toMatch(/are not in the archive/);
  }, 300_000);

  it('deletes the snapshots GFS no longer keeps, never the newest nor the window base', async () => {
    const archive = openArchive(config);
    const plan = await planRetention(archive, {
      snapshots: { last: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0 },
      changesDays: 0,
    });
    expect(plan.snapshots.map((s) => [s.id, s.keptFor.length > 0])).toEqual([
      [ids[1], true],
      [ids[0], false],
    ]);
    expect(plan.snapshots[0]!.keptFor).toContain('newest');
    await applyRetention(archive, plan, actor, 'drop old snapshots');
    expect((await listSnapshots(archive)).map((s) => s.id)).toEqual([ids[1]]);
    const left: string[] = [];
    for await (const info of archive.store.list(`${t.archivePrefix}/snapshots/${ids[0]}/`))
      left.push(info.key);
    expect(left).toEqual([]);
    await expectRestores(points[3]!.at, points[3]!.states, 'after-snapshot-retention');
  }, 300_000);
});
