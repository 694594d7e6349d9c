// tier end to end, as real processes: MariaDB → capture → Kafka → tier → FerretDB (hot) and the object
// store (cold). The replica must equal the source inside the window, the archive must tile every partition
// and replay to the source, and running the same events again must change nothing.

import { afterEach, describe, expect, it } from 'vitest';
import { Binary } from 'mongodb';
import { changeTopic, createKafka, createLogger } from '../../services/core/index.js';
import { mysqlTimeText } from '../../services/tiering/index.js';
import { archiveContents, replicaContents } from '../support/tier-checks.js';
import { tierFixture } from '../support/tier-fixture.js';
import {
  eventually,
  expectArchiveComplete,
  localUri,
  metric,
  replicaMatchesSource,
} from '../support/tier-verify.js';

const logger = createLogger({ level: 'warn' });

describe('tier', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  it('keeps a replica equal to the source inside the window and archives every change exactly once', async () => {
    const t = await tierFixture();
    cleanup.push(() => t.drop());
    const { admin } = t.fx;
    const old = mysqlTimeText(Date.now() - 40 * 86_400_000, false);
    // Rows before the snapshot, some outside the 30-day window.
    for (let i = 1; i <= 300; i++) {
      await admin.query(
        'INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, IF(? % 10 = 0, ?, UTC_TIMESTAMP(6)))',
        [
          i,
          i % 7,
          9_007_199_254_740_993n + BigInt(i),
          `hello ${i} 你好 👋`,
          `${i}.000001`,
          JSON.stringify({ n: i, tags: ['a'] }),
          Buffer.from([i % 256, 0, 255]),
          i,
          old,
        ],
      );
    }
    await admin.query(
      "INSERT INTO users VALUES (1, 'ann', 9223372036854775807, '2026-03-01 10:03:12.123456'), (2, 'bob', -9223372036854775808, NULL), (3, 'cy', 0, NULL)",
    );
    await admin.query("INSERT INTO memberships VALUES (1, 1, 'owner'), (1, 2, 'member'), (2, 3, 'member')");
    t.capture.start();
    await t.capture.waitForStatus('streaming');
    const tier = await t.newTier();
    tier.start();

    // Streaming changes of every kind.
    await admin.query('UPDATE messages SET body = CONCAT(body, " (edited)") WHERE id % 3 = 0');
    await admin.query('DELETE FROM messages WHERE id % 5 = 0');
    await admin.query(
      "INSERT INTO messages VALUES (18446744073709551615, 3, 7, 'max id', '99999999999999.999999', '{\"big\": 12345678901234567890}', NULL, UTC_TIMESTAMP(6))",
    );
    await admin.query('FLUSH BINARY LOGS');
    await admin.query("UPDATE users SET id = 30, name = 'cy renamed' WHERE id = 3"); // primary key change
    await admin.query('DELETE FROM memberships WHERE room_id = 1 AND user_id = 2');
    await admin.query("UPDATE memberships SET role = 'owner' WHERE room_id = 2");
    for (let i = 301; i <= 700; i++) {
      await admin.query('INSERT INTO messages VALUES (?, ?, ?, ?, NULL, NULL, NULL, UTC_TIMESTAMP(6))', [
        i,
        i % 7,
        i,
        `m${i}`,
      ]);
    }

    for (const table of ['messages', 'users', 'memberships']) {
      await eventually(`replica of ${table} equal to the source`, () => replicaMatchesSource(t, table));
    }

    // Exact BSON types, read back through the driver.
    const client = await t.mongo();
    const users = client.db(t.mongoDatabase).collection(`${t.fx.db}.users`);
    const ann = await users.findOne({ _id: '1' } as never);
    expect(ann?.karma).toBe(9223372036854775807n);
    expect(ann?.seen_at).toBe('2026-03-01 10:03:12.123456');
    expect((await users.findOne({ _id: '3' } as never))?._tidemark).toMatchObject({ op: 'd', deleted: true });
    const messages = client.db(t.mongoDatabase).collection(`${t.fx.db}.messages`);
    const max = await messages.findOne({ body: 'max id' });
    expect(max?.id).toBe('18446744073709551615');
    expect(max?.meta).toBe('{"big": 12345678901234567890}'); // not exact as a document: kept as text
    const first = await messages.findOne({ body: 'hello 1 你好 👋' });
    // MariaDB's JSON (a LONGTEXT with a json_valid check) arrives as JSON and is stored as a document.
    expect(first?.meta).toEqual({ n: 1, tags: ['a'] });
    expect(first?.user_id).toBe(9_007_199_254_740_994n);
    expect(first?.attachment).toBeInstanceOf(Binary);
    expect(
      await messages.countDocuments({
        created_at: { $lt: mysqlTimeText(Date.now() - 30 * 86_400_000, false) },
      }),
    ).toBe(0);
    const indexes = await messages.indexes();
    expect(indexes.map((i) => Object.keys(i.key).join(','))).toContain('room_id,created_at');

    // The archive: every change Kafka holds, once, in files that tile each partition.
    await expectArchiveComplete(t, ['messages', 'users', 'memberships']);
    for (const table of ['messages', 'users', 'memberships']) {
      const archive = await archiveContents(t.store, t.archivePrefix, t.fx.db, table);
      for (const e of archive.entries) {
        expect(e.rows).toBeLessThanOrEqual(200n);
        expect(e.object_key).toMatch(
          new RegExp(
            `^${t.archivePrefix}/changes/${t.fx.db}\\.${table}/dt=\\d{4}-\\d{2}-\\d{2}/hour=\\d{2}/0-\\d{20}-\\d{20}\\.avro$`,
          ),
        );
        expect(e.sha256).toMatch(/^[0-9a-f]{64}$/);
      }
      if (table === 'messages') {
        expect(archive.entries.length).toBeGreaterThan(3);
        const stats = archive.entries.map((e) => e.column_stats.room_id);
        expect(stats.every((s) => s !== undefined && Number(s.min) <= Number(s.max))).toBe(true);
      }
    }
    expect(await metric(tier, 'tidemark_tier_cold_files_total')).toBeGreaterThan(3);
    expect(await metric(tier, 'tidemark_tier_hot_rows_applied_total')).toBe(870);
    const health = (await (await fetch(`http://127.0.0.1:${tier.port}/healthz`)).json()) as {
      healthy: boolean;
    };
    expect(health.healthy).toBe(true);

    // Everything again from offset 0 (both groups reset): the replica keeps its positions, the archive its files.
    const before = await replicaContents(
      localUri(t),
      t.mongoDatabase,
      `${t.fx.db}.messages`,
      ['id'],
      ['meta'],
    );
    const keysBefore = (await archiveContents(t.store, t.archivePrefix, t.fx.db, 'messages')).entries.map(
      (e) => e.object_key,
    );
    await tier.stop();
    const kafka = createKafka(t.fx.config.kafka!, logger, '-reset');
    const kadmin = kafka.admin();
    await kadmin.connect();
    for (const part of ['hot', 'cold']) {
      for (const table of ['messages', 'users', 'memberships']) {
        await kadmin.resetOffsets({
          groupId: `${t.fx.prefix}.tier.${part}`,
          topic: changeTopic(t.fx.prefix, t.fx.db, table),
          earliest: true,
        });
      }
    }
    await kadmin.disconnect();
    tier.start();
    await eventually('the replay to be skipped as stale', async () =>
      (await metric(tier, 'tidemark_tier_hot_stale_events_total')) > 500 ? true : undefined,
    );
    await eventually('the archive to be rewritten', async () =>
      (await metric(tier, 'tidemark_tier_cold_files_total')) >= keysBefore.length ? true : undefined,
    );
    const after = await replicaContents(
      localUri(t),
      t.mongoDatabase,
      `${t.fx.db}.messages`,
      ['id'],
      ['meta'],
    );
    expect(after.positions).toEqual(before.positions);
    expect(after.rows).toEqual(before.rows);
    const rewritten = await archiveContents(t.store, t.archivePrefix, t.fx.db, 'messages');
    expect(rewritten.entries.map((e) => e.object_key)).toEqual(keysBefore);
    expect(rewritten.breaks).toEqual([]);
  });
});
