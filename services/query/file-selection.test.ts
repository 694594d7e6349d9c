import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ColumnDef, ManifestEntry } from '../core/index.js';
import { excludedBy, selectFiles, timeLiteralMicros } from './file-selection.js';
import { changeColumns, quoteString } from './change-scan.js';
import { cteNames, tableReferences, type Predicate } from './sql-shape.js';

let instance: DuckDBInstance;
beforeAll(async () => {
  instance = await DuckDBInstance.create(':memory:');
});
afterAll(() => instance.closeSync());

async function refs(sql: string) {
  const connection = await instance.connect();
  try {
    const reader = await connection.runAndReadAll(`SELECT json_serialize_sql(${quoteString(sql)})`);
    const tree = (JSON.parse(String(reader.getRows()[0]?.[0])) as { statements: unknown }).statements;
    return { references: tableReferences(tree), ctes: cteNames(tree) };
  } finally {
    connection.closeSync();
  }
}

const texts = (ps: readonly Predicate[]) => ps.map((p) => `${p.column} ${p.op} ${p.value.text}`);

describe('what a query asks of the archive', () => {
  it('takes the AND-ed comparisons of a table with constants, either way round, BETWEEN and IN', async () => {
    const { references } = await refs(
      `SELECT * FROM changes."chat.messages" m WHERE m._ts >= TIMESTAMP '2026-03-01' AND 42 = room_id
       AND user_id BETWEEN 5 AND 9 AND room_id IN (3, 1, 2) AND amount > 1.50 AND body = 'hi'`,
    );
    expect(references).toHaveLength(1);
    expect(references[0]!.schema).toBe('changes');
    expect(references[0]!.name).toBe('chat.messages');
    expect(texts(references[0]!.predicates)).toEqual([
      '_ts >= 2026-03-01',
      'room_id = 42',
      'user_id >= 5',
      'user_id <= 9',
      'room_id >= 1',
      'room_id <= 3',
      'amount > 1.50',
      'body = hi',
    ]);
  });

  it('takes nothing from OR, NOT or functions, and only qualified columns in joins', async () => {
    const { references } = await refs(
      `SELECT * FROM changes."chat.messages" m JOIN "chat.users" u ON u.id = m.user_id
       WHERE (m.room_id = 1 OR m.room_id = 2) AND NOT m.user_id = 3 AND abs(m.user_id) = 4 AND m.room_id < 10 AND id = 5`,
    );
    expect(references.map((r) => [r.schema, r.name, texts(r.predicates)])).toEqual([
      ['changes', 'chat.messages', ['room_id < 10']],
      ['', 'chat.users', []],
    ]);
  });

  it('takes no bound from a rounded 64-bit constant, drops the time of a DATE cast, and matches schema.table.column', async () => {
    const { references } = await refs(
      `SELECT * FROM changes."chat.messages" m JOIN "chat.messages" s USING (id)
       WHERE m.id = 1234567890123456789 AND m._ts >= '2026-03-01 10:00'::DATE AND main."chat.messages".room_id = 3`,
    );
    expect(references.map((r) => [r.schema, texts(r.predicates)])).toEqual([
      ['changes', ['_ts >= 2026-03-01']],
      ['', []],
    ]);
    const plain = await refs(`SELECT * FROM "chat.messages" WHERE main."chat.messages".room_id = 3`);
    expect(texts(plain.references[0]!.predicates)).toEqual(['room_id = 3']);
  });

  it('gives each reference its own predicates, in subqueries and CTEs, and knows CTE names', async () => {
    const { references, ctes } = await refs(
      `WITH recent AS (SELECT * FROM changes."chat.messages" WHERE _ts > '2026-03-01')
       SELECT * FROM recent UNION ALL SELECT * FROM changes."chat.messages"`,
    );
    expect(references.filter((r) => r.schema === 'changes').map((r) => texts(r.predicates))).toEqual([
      ['_ts > 2026-03-01'],
      [],
    ]);
    expect(ctes.has('recent')).toBe(true);
  });
});

const columns: ColumnDef[] = [
  { name: 'room_id', type: 'int' },
  { name: 'amount', type: 'decimal', precision: 10, scale: 2 },
  { name: 'big', type: 'bigint', unsigned: true },
  { name: 'ratio', type: 'float' },
  { name: 'day', type: 'date' },
  { name: 'created_at', type: 'datetime', fsp: 6 },
  { name: 'body', type: 'text' },
];

function entry(o: Partial<ManifestEntry> = {}): ManifestEntry {
  return {
    table: 'chat.messages',
    object_key: 'k',
    partition: 0,
    first_offset: 0n,
    last_offset: 9n,
    first_pos: '0000000001-00000000000100-000000000000',
    last_pos: '0000000001-00000000000900-000000000000',
    min_ts_ms: BigInt(Date.UTC(2026, 2, 1, 10)),
    max_ts_ms: BigInt(Date.UTC(2026, 2, 1, 11)),
    rows: 10n,
    bytes: 100n,
    sha256: '',
    schema_fingerprint: '',
    codec: 'deflate',
    key_id: null,
    column_stats: {
      room_id: { min: '3', max: '7' },
      amount: { min: '-1.50', max: '20.25' },
      big: { min: '10', max: '9' },
      ratio: { min: '0.10000000149011612', max: '0.10000000149011612' },
      day: { min: '2026-03-01', max: '2026-03-02' },
      created_at: { min: '2026-03-01 10:00:00.000000', max: '2026-03-01 10:30:00.500000' },
      body: { min: 'b', max: 'm' },
    },
    written_ms: 0n,
    positions_ascending: true,
    ...o,
  };
}

const p = (
  column: string,
  op: Predicate['op'],
  kind: 'number' | 'string' | 'time',
  text: string,
): Predicate => ({
  column,
  op,
  value: { kind, text },
  text: `${column} ${op} ${text}`,
});

describe('which files a query reads', () => {
  it('reads time literals as UTC microseconds, with or without a zone', () => {
    expect(timeLiteralMicros('2026-03-01')).toBe(BigInt(Date.UTC(2026, 2, 1)) * 1000n);
    expect(timeLiteralMicros('2026-03-01 10:00:00.000001')).toBe(
      BigInt(Date.UTC(2026, 2, 1, 10)) * 1000n + 1n,
    );
    expect(timeLiteralMicros('2026-03-01T12:00:00+02:00')).toBe(BigInt(Date.UTC(2026, 2, 1, 10)) * 1000n);
    expect(timeLiteralMicros('yesterday')).toBeUndefined();
  });

  it('skips a file only when its range cannot meet the predicate', () => {
    const e = entry();
    expect(excludedBy(e, p('_ts', '>=', 'time', '2026-03-01 11:00:00.0005'), columns)).toBeUndefined();
    expect(excludedBy(e, p('_ts', '>', 'time', '2026-03-01 11:00:01'), columns)).toMatch(/events span/);
    expect(excludedBy(e, p('_ts', '<', 'string', '2026-03-01 09:59:59'), columns)).toMatch(/events span/);
    expect(excludedBy(e, p('room_id', '=', 'number', '7'), columns)).toBeUndefined();
    expect(excludedBy(e, p('room_id', '=', 'number', '8'), columns)).toMatch(/room_id spans 3 .. 7/);
    expect(excludedBy(e, p('room_id', '<', 'number', '3'), columns)).toBeDefined();
    // DECIMAL, BIGINT UNSIGNED and FLOAT min/max are not in DuckDB's order: they never skip a file.
    expect(excludedBy(e, p('amount', '>=', 'number', '20.26'), columns)).toBeUndefined();
    expect(excludedBy(e, p('big', '=', 'number', '10'), columns)).toBeUndefined();
    expect(excludedBy(e, p('ratio', '=', 'number', '0.1'), columns)).toBeUndefined();
    // A DATE is bounded by dates only.
    expect(excludedBy(e, p('day', '<', 'time', '2026-02-28'), columns)).toBeDefined();
    expect(excludedBy(e, p('day', '<', 'time', '2026-03-01 10:00'), columns)).toBeUndefined();
    // DATETIME text compares at full precision whatever the literal's width.
    expect(excludedBy(e, p('created_at', '=', 'time', '2026-03-01 10:00:00'), columns)).toBeUndefined();
    expect(excludedBy(e, p('created_at', '>', 'time', '2026-03-01 10:30:00.5'), columns)).toBeDefined();
    expect(excludedBy(e, p('body', '=', 'string', 'z'), columns)).toBeDefined();
    expect(excludedBy(e, p('body', '>=', 'string', 'c'), columns)).toBeUndefined();
    expect(
      excludedBy(e, p('_pos', '>', 'string', '0000000001-00000000000900-000000000000'), columns),
    ).toBeDefined();
    // Columns without min/max, and literals of another kind, never skip.
    expect(excludedBy(e, p('user_id', '=', 'number', '1'), columns)).toBeUndefined();
    expect(excludedBy(e, p('room_id', '=', 'string', 'x'), columns)).toBeUndefined();
  });

  it('keeps _ts for the event time when the table has a column of that name (shown as _ts_)', () => {
    const clash: ColumnDef[] = [{ name: '_ts', type: 'int' }];
    expect(changeColumns(clash).map((c) => c.name)).toEqual(['_op', '_ts', '_pos', '_tx', '_key', '_ts_']);
    const e = entry({ column_stats: { _ts: { min: '1', max: '5' } } });
    expect(excludedBy(e, p('_ts_', '=', 'number', '9'), clash)).toMatch(/_ts spans 1 .. 5/);
    expect(excludedBy(e, p('_ts', '>', 'time', '2026-03-02'), clash)).toMatch(/events span/);
  });

  it('reads a file any reference needs, and none outside --from/--to', () => {
    const e = entry();
    const far = p('room_id', '=', 'number', '100');
    expect(selectFiles([e], { fromMs: undefined, toMs: undefined }, [[far], []], columns)[0]!.read).toBe(
      true,
    );
    const skipped = selectFiles([e], { fromMs: undefined, toMs: undefined }, [[far]], columns)[0]!;
    expect(skipped.read).toBe(false);
    expect(skipped.reason).toMatch(/room_id/);
    const late = selectFiles([e], { fromMs: Date.UTC(2026, 2, 2), toMs: undefined }, [[]], columns)[0]!;
    expect(late.read).toBe(false);
    expect(late.reason).toMatch(/--from/);
  });
});
