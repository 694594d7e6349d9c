// Analyst queries over a real archive (MariaDB → capture → Kafka → tier → MinIO), each answer checked
// against the same question asked of the source database; file pruning checked by the files read;
// Parquet exports read back with DuckDB and compared with the archive's rows.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema, createLogger, type Config, type Row } from '../../services/core/index.js';
import { runExport } from '../../services/query/export.js';
import { writeResult } from '../../services/query/output.js';
import { QuerySession, type QueryRequest } from '../../services/query/session.js';
import { sourceSnapshot } from '../support/change-ledger.js';
import { rejectionOf } from '../support/error-of.js';
import { localServices, uniqueName } from '../support/local-services.js';
import { tierFixture, type TierFixture } from '../support/tier-fixture.js';
import { expectArchiveComplete, sleep } from '../support/tier-verify.js';
import type { CaptureProcess } from '../support/capture-process.js';

const logger = createLogger({ level: 'warn' });
const CLI = fileURLToPath(new URL('../../services/cli/index.ts', import.meta.url));

/** A value as text, times without trailing zero fractions (DuckDB prints 10:00:00, MySQL 10:00:00.000000). */
const text = (v: unknown) =>
  String(v).replace(/^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(\.\d*?)0*$/, (_, t: string, f: string) =>
    f === '.' ? t : `${t}${f}`,
  );

describe('query', () => {
  let t: TierFixture;
  let tier: CaptureProcess;
  let config: Config;
  let db: string;
  /** Source states at two binlog positions, and a time between the two phases of the workload. */
  let first: { at: string; states: Map<string, Map<string, Row>> };
  let second: { at: string; states: Map<string, Map<string, Row>> };
  let between: Date;
  const counts = { c: 0, u: 0, d: 0 };

  /** Runs a query, returning its rows as JSON objects (DuckDB's exact text for big numbers and times). */
  const query = async (sql: string, over: Partial<QueryRequest> = {}) => {
    const session = await QuerySession.open({ config, logger }, { sql, ...over }, true);
    try {
      const lines: string[] = [];
      await writeResult(session, sql, 'jsonl', (l) => lines.push(l));
      return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    } finally {
      await session.close();
    }
  };
  const filesRead = async (sql: string, over: Partial<QueryRequest> = {}) => {
    const session = await QuerySession.open({ config, logger }, { sql, ...over }, false);
    try {
      const d = session.plan.changes[0]!.decisions;
      return { read: d.filter((x) => x.read).length, total: d.length };
    } finally {
      await session.close();
    }
  };

  beforeAll(async () => {
    t = await tierFixture({ store: 's3', partitions: 2 });
    db = t.fx.db;
    config = configSchema.parse(structuredClone(t.tierRaw));
    t.capture.start();
    await t.capture.waitForStatus('streaming');
    tier = await t.newTier();
    tier.start();
    const { admin } = t.fx;
    // Phase 1: 600 messages over six days in six rooms, ten users.
    for (let i = 1; i <= 600; i++) {
      await admin.query('INSERT INTO messages VALUES (?, ?, ?, ?, ?, NULL, NULL, ?)', [
        i,
        i % 6,
        i % 7,
        `message ${i} 你好 👋`,
        `${i}.25`,
        `2026-03-0${1 + (i % 6)} ${String(i % 24).padStart(2, '0')}:00:00.${String(i).padStart(6, '0')}`,
      ]);
      counts.c++;
    }
    for (let i = 1; i <= 10; i++) {
      await admin.query('INSERT INTO users VALUES (?, ?, ?, NULL)', [i, `user ${i}`, i * 10]);
      counts.c++;
    }
    let snap = await sourceSnapshot(t.fx.config.source!, db, ['messages', 'users']);
    first = { at: `${snap.binlogFile}:${snap.binlogOffset}`, states: snap.states };
    // Binlog times are whole seconds and files are cut after a second of quiet: a clean boundary.
    await sleep(2500);
    between = new Date();
    await sleep(2500);
    // Phase 2: edits, deletes, a profile edited three times, and a room of its own.
    const [edited] = await admin.query('UPDATE messages SET amount = amount + 1 WHERE room_id = 2');
    counts.u += (edited as { affectedRows: number }).affectedRows;
    const [deleted] = await admin.query('DELETE FROM messages WHERE room_id = 5 AND id > 300');
    counts.d += (deleted as { affectedRows: number }).affectedRows;
    for (const name of ['seven', 'Seven', 'Seven S.']) {
      await admin.query('UPDATE users SET name = ? WHERE id = 7', [name]);
      counts.u++;
    }
    for (let i = 1001; i <= 1010; i++) {
      await admin.query(
        "INSERT INTO messages VALUES (?, 99, 1, 'room 99', 0, NULL, NULL, '2026-03-10 10:00:00')",
        [i],
      );
      counts.c++;
    }
    snap = await sourceSnapshot(t.fx.config.source!, db, ['messages', 'users']);
    second = { at: `${snap.binlogFile}:${snap.binlogOffset}`, states: snap.states };
    // A last transaction over both partitions, so the archive alone reaches past the second point.
    await admin.query('BEGIN');
    for (let i = 2001; i <= 2020; i++) {
      await admin.query(
        "INSERT INTO messages VALUES (?, 98, 1, 'last', 0, NULL, NULL, '2026-03-11 10:00:00')",
        [i],
      );
      counts.c++;
    }
    await admin.query('COMMIT');
    await expectArchiveComplete(t, ['messages', 'users']);
  }, 600_000);

  afterAll(async () => {
    await t?.drop();
  });

  it('counts changes per operation as the workload made them', async () => {
    const rows = await query(
      `SELECT _op, count(*) AS n FROM changes."${db}.messages" GROUP BY _op UNION ALL ` +
        `SELECT _op, count(*) FROM changes."${db}.users" GROUP BY _op`,
    );
    const got = { c: 0, u: 0, d: 0 } as Record<string, number>;
    for (const r of rows) got[r._op as string] = (got[r._op as string] ?? 0) + Number(r.n);
    expect(got).toEqual(counts);
  });

  it('groups messages per room and per day exactly as the source holds them', async () => {
    const rows = await query(
      `SELECT room_id, CAST(created_at AS DATE) AS day, count(*) AS n, sum(amount) AS total
       FROM changes."${db}.messages" WHERE _op = 'c' AND room_id < 90 GROUP BY ALL ORDER BY ALL`,
    );
    const expected = new Map<string, { n: number; total: number }>();
    for (const r of first.states.get('messages')!.values()) {
      const k = `${String(r.room_id)} ${String(r.created_at).slice(0, 10)}`;
      const e = expected.get(k) ?? { n: 0, total: 0 };
      e.n++;
      e.total += Number(r.amount);
      expected.set(k, e);
    }
    expect(rows.length).toBe(expected.size);
    for (const r of rows) {
      const e = expected.get(`${String(r.room_id)} ${String(r.day)}`);
      expect(e, `${String(r.room_id)} ${String(r.day)}`).toBeDefined();
      expect(Number(r.n)).toBe(e!.n);
      expect(Number(r.total)).toBeCloseTo(e!.total, 6);
    }
  });

  it('shows a table as it was at a position, row by row, and sums it exactly', async () => {
    for (const point of [first, second]) {
      const rows = await query(
        `SELECT id, room_id, user_id, body, amount, created_at FROM "${db}.messages" ORDER BY id`,
        {
          at: point.at,
        },
      );
      const source = [...point.states.get('messages')!.values()].sort((a, b) => Number(a.id) - Number(b.id));
      expect(rows.length).toBe(source.length);
      rows.forEach((r, i) => {
        const s = source[i]!;
        expect([r.id, r.room_id, r.user_id, r.body, r.amount, r.created_at].map(text)).toEqual(
          [s.id, s.room_id, s.user_id, s.body, s.amount, s.created_at].map(text),
        );
      });
      const [sum] = await query(`SELECT sum(amount) AS s, count(*) AS n FROM "${db}.messages"`, {
        at: point.at,
      });
      const exact = source.reduce((n, s) => n + BigInt(String(s.amount).replace('.', '')), 0n);
      expect(String(sum!.s).replace('.', '')).toBe(exact.toString());
    }
    // Latest, from the archive alone: the last transaction is where every partition's archive meets.
    const [latest] = await query(`SELECT count(*) AS n FROM "${db}.messages"`);
    expect(Number(latest!.n)).toBe(second.states.get('messages')!.size);
  });

  it("lists every edit of one user's profile in order", async () => {
    const rows = await query(`SELECT _op, name FROM changes."${db}.users" WHERE id = 7 ORDER BY _pos`);
    expect(rows.map((r) => [r._op, r.name])).toEqual([
      ['c', 'user 7'],
      ['u', 'seven'],
      ['u', 'Seven'],
      ['u', 'Seven S.'],
    ]);
  });

  it('reads only the files a narrow time range or a column bound can need, with the same answer', async () => {
    const all = await filesRead(`SELECT count(*) FROM changes."${db}.messages"`);
    const iso = between.toISOString().replace('T', ' ').replace('Z', '');
    const recent = `SELECT count(*) AS n FROM changes."${db}.messages" WHERE _ts >= TIMESTAMP '${iso}'`;
    const narrow = await filesRead(recent);
    expect(narrow.read).toBeGreaterThan(0);
    expect(narrow.read).toBeLessThan(all.read / 2);
    const [pruned] = await query(recent);
    expect(Number(pruned!.n)).toBe(counts.u - 3 + counts.d + 10 + 20);
    // The same question through --from reads the same files.
    expect(
      (await filesRead(`SELECT count(*) FROM changes."${db}.messages"`, { from: between.toISOString() }))
        .read,
    ).toBe(narrow.read);
    const room = `SELECT count(*) AS n FROM changes."${db}.messages" WHERE room_id = 99`;
    const roomFiles = await filesRead(room);
    expect(roomFiles.read).toBeLessThan(all.read);
    expect(Number((await query(room))[0]!.n)).toBe(10);
  });

  it('exports Parquet that DuckDB reads back equal to the archive rows', async () => {
    const out = mkdtempSync(join(tmpdir(), 'tidemark-export-test-'));
    const summary = await runExport(
      { config, logger },
      { tables: [`${db}.messages`], from: undefined, to: undefined, format: 'parquet', out, force: false },
    );
    expect(summary.tables[0]!.rows).toBe(counts.c - 10 + counts.u - 3 + counts.d);
    const columns = '_op, _pos, id, room_id, user_id, body, amount, created_at';
    const archived = await query(`SELECT ${columns} FROM changes."${db}.messages" ORDER BY _pos`);
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    const reader = await connection.runAndReadAll(
      `SELECT ${columns}, dt FROM read_parquet('${out}/${db}.messages/*/*.parquet', hive_partitioning = true) ORDER BY _pos`,
    );
    const exported = reader.getRowObjectsJson();
    connection.closeSync();
    instance.closeSync();
    expect(exported.length).toBe(archived.length);
    exported.forEach((r, i) => {
      const { dt, ...row } = r;
      expect(row).toEqual(archived[i]);
      expect(dt).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    });
    const again = await rejectionOf(
      runExport(
        { config, logger },
        { tables: [`${db}.messages`], from: undefined, to: undefined, format: 'parquet', out, force: false },
      ),
    );
    expect(again.code).toBe('TARGET_NOT_EMPTY');
  });

  it('exports to S3: Hive-partitioned objects that read back to the same rows', async () => {
    const prefix = uniqueName('export');
    const out = `s3://${localServices().s3.bucket}/${prefix}`;
    const summary = await runExport(
      { config, logger },
      { tables: [`${db}.messages`], from: undefined, to: undefined, format: 'parquet', out, force: false },
    );
    const keys: string[] = [];
    for await (const info of t.store.list(`${prefix}/`)) keys.push(info.key);
    expect(keys.length).toBe(summary.tables[0]!.files);
    for (const key of keys)
      expect(key).toMatch(
        new RegExp(`^${prefix}/${db}\\.messages/dt=\\d{4}-\\d\\d-\\d\\d/data_0\\.parquet$`),
      );
    const local = mkdtempSync(join(tmpdir(), 'tidemark-export-s3-'));
    for (const [i, key] of keys.entries()) writeFileSync(join(local, `${i}.parquet`), await t.store.get(key));
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    const reader = await connection.runAndReadAll(
      `SELECT count(*) AS n FROM read_parquet('${local}/*.parquet')`,
    );
    connection.closeSync();
    instance.closeSync();
    expect(Number(reader.getRowObjectsJson()[0]!.n)).toBe(summary.tables[0]!.rows);
    const [archived] = await query(`SELECT count(*) AS n FROM changes."${db}.messages"`);
    expect(Number(archived!.n)).toBe(summary.tables[0]!.rows);
  });

  it('runs from the command line: csv, --explain, --out, and exit code 2 for a bad query', () => {
    const cli = (args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args, '--config', tier.configFile], {
        encoding: 'utf8',
        env: { ...process.env, FORCE_COLOR: '0' },
      });
    const csv = cli([
      'query',
      `SELECT _op, count(*) AS n FROM changes."${db}.users" GROUP BY 1 ORDER BY 1`,
      '--format',
      'csv',
    ]);
    expect(csv.status, csv.stderr).toBe(0);
    expect(csv.stdout.trim().split('\n')).toEqual(['_op,n', 'c,10', 'u,3']);
    const explain = cli(['query', '--explain', `SELECT * FROM changes."${db}.messages" WHERE room_id = 99`]);
    expect(explain.status, explain.stderr).toBe(0);
    expect(explain.stdout).toMatch(/reads \d+ of \d+ files listed/);
    expect(explain.stdout).toMatch(/skip .*room_id spans/);
    const file = join(mkdtempSync(join(tmpdir(), 'tidemark-query-cli-')), 'users.parquet');
    const out = cli(['query', `SELECT * FROM "${db}.users"`, '--out', file]);
    expect(out.status, out.stderr).toBe(0);
    expect(existsSync(file)).toBe(true);
    const bad = cli(['query', `SELECT * FORM changes."${db}.users"`]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('LINE 1');
    expect(cli(['export', '--help']).stdout).toContain('--format');
  });

  it('says what is wrong: an unknown table, a SQL error with its position, a time range outside the archive', async () => {
    const unknown = await rejectionOf(query(`SELECT * FROM changes."${db}.nope"`));
    expect(unknown.code).toBe('BAD_ARGUMENT');
    expect(unknown.hint).toContain(`changes."${db}.messages"`);
    const syntax = await rejectionOf(query(`SELECT * FORM changes."${db}.messages"`));
    expect(syntax.message).toContain('LINE 1');
    const column = await rejectionOf(query(`SELECT nope FROM changes."${db}.messages"`));
    expect(column.message).toMatch(/nope/);
    const outside = await rejectionOf(
      query(`SELECT count(*) FROM changes."${db}.messages"`, { from: '2001-01-01', to: '2001-01-02' }),
    );
    expect(outside.code).toBe('OUT_OF_WINDOW');
    expect(outside.hint).toMatch(/holds .* from \d{4}-/);
  });
});
