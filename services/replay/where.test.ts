import { describe, expect, it } from 'vitest';
import { TidemarkError, type ColumnDef, type Row } from '../core/index.js';
import { compareDecimals, compileWhere, parseWhere } from './where.js';

function rejection(run: () => unknown): TidemarkError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(TidemarkError);
    return err as TidemarkError;
  }
  throw new Error('it was accepted');
}

const columns: ColumnDef[] = [
  { name: 'id', type: 'bigint' },
  { name: 'room_id', type: 'int' },
  { name: 'big', type: 'bigint', unsigned: true },
  { name: 'amount', type: 'decimal', precision: 30, scale: 10 },
  { name: 'score', type: 'double' },
  { name: 'name', type: 'varchar' },
  { name: 'hash', type: 'varbinary' },
];

/** The rows of `rows` a set of --where texts keeps, by id. */
function keep(wheres: string[], rows: Row[]): unknown[] {
  const test = compileWhere(wheres.map(parseWhere), columns, 'chat.messages');
  return rows.filter(test).map((r) => r.id);
}

describe('parseWhere', () => {
  it('reads <column> <op> <value> for every comparison operator', () => {
    expect(parseWhere('room_id = 42')).toEqual({
      text: 'room_id = 42',
      column: 'room_id',
      op: '=',
      values: ['42'],
    });
    const ops: [string, string][] = [
      ['=', '='],
      ['==', '='],
      ['!=', '!='],
      ['<>', '!='],
      ['<', '<'],
      ['<=', '<='],
      ['>', '>'],
      ['>=', '>='],
    ];
    for (const [written, op] of ops) {
      expect(parseWhere(`room_id ${written} 42`)).toMatchObject({ column: 'room_id', op, values: ['42'] });
      expect(parseWhere(`room_id${written}42`)).toMatchObject({ column: 'room_id', op, values: ['42'] });
    }
  });

  it('reads IN with a list of numbers, quoted strings and NULL', () => {
    expect(parseWhere('room_id IN (42, 43,44)')).toMatchObject({ op: 'in', values: ['42', '43', '44'] });
    expect(parseWhere(`name in ('a, b', "c", 'it''s', NULL)`)).toMatchObject({
      column: 'name',
      op: 'in',
      values: ['a, b', 'c', "it's", null],
    });
  });

  it('reads IS NULL and IS NOT NULL in any case', () => {
    expect(parseWhere('deleted_at IS NULL')).toMatchObject({
      column: 'deleted_at',
      op: 'is null',
      values: [],
    });
    expect(parseWhere('deleted_at is  not null')).toMatchObject({ op: 'is not null', values: [] });
  });

  it('unquotes strings, with a doubled quote standing for one', () => {
    expect(parseWhere("name = 'Ada Lovelace'").values).toEqual(['Ada Lovelace']);
    expect(parseWhere("name = 'it''s'").values).toEqual(["it's"]);
    expect(parseWhere('name = "say ""hi"""').values).toEqual(['say "hi"']);
    expect(parseWhere("name = ''").values).toEqual(['']);
    expect(parseWhere("name = 'NULL'").values).toEqual(['NULL']);
    expect(parseWhere('name = NULL').values).toEqual([null]);
  });

  it('reads a backticked column, also one whose name needs the backticks', () => {
    expect(parseWhere('`order` = 3')).toMatchObject({ column: 'order', op: '=', values: ['3'] });
    expect(parseWhere("`first name` != 'Ada'")).toMatchObject({
      column: 'first name',
      op: '!=',
      values: ['Ada'],
    });
    expect(parseWhere('`first name` IS NULL')).toMatchObject({ column: 'first name', op: 'is null' });
  });

  it('refuses what does not parse with BAD_ARGUMENT and an example', () => {
    const notAFilter = rejection(() => parseWhere('just some words'));
    expect(notAFilter.code).toBe('BAD_ARGUMENT');
    expect(notAFilter.hint).toContain('room_id = 42');
    expect(rejection(() => parseWhere('= 5')).code).toBe('BAD_ARGUMENT');

    const unquoted = rejection(() => parseWhere('name = Ada Lovelace'));
    expect(unquoted.code).toBe('BAD_ARGUMENT');
    expect(unquoted.message).toContain('Ada Lovelace');
    expect(unquoted.hint).toContain("'Ada Lovelace'");

    expect(rejection(() => parseWhere('room_id =')).code).toBe('BAD_ARGUMENT');
    const list = rejection(() => parseWhere('room_id IN 42, 43'));
    expect(list.code).toBe('BAD_ARGUMENT');
    expect(list.message).toContain('parentheses');
  });
});

describe('compareDecimals', () => {
  const sign = (a: string, b: string) => Math.sign(compareDecimals(a, b));

  it('orders by sign first', () => {
    expect(sign('-1', '1')).toBe(-1);
    expect(sign('1', '-1')).toBe(1);
    expect(sign('-0.0001', '0')).toBe(-1);
    expect(sign('+2', '-3')).toBe(1);
  });

  it('treats -0 as 0', () => {
    expect(sign('-0', '0')).toBe(0);
    expect(sign('-0.000', '0')).toBe(0);
    expect(sign('-0', '-1')).toBe(1);
  });

  it('ignores leading zeros of the integer part and trailing zeros of the fraction', () => {
    expect(sign('00012.500', '12.5')).toBe(0);
    expect(sign('12', '12.000')).toBe(0);
    expect(sign('.5', '0.50')).toBe(0);
    expect(sign('-.5', '-0.5')).toBe(0);
    expect(sign('007', '10')).toBe(-1);
  });

  it('compares numbers of different lengths by magnitude, not by text', () => {
    expect(sign('9', '10')).toBe(-1);
    expect(sign('100', '99.999')).toBe(1);
    expect(sign('1.25', '1.3')).toBe(-1);
    expect(sign('18446744073709551615', '18446744073709551614')).toBe(1);
    expect(sign('18446744073709551615', '9223372036854775808')).toBe(1);
  });

  it('reverses the order for negative numbers', () => {
    expect(sign('-10', '-9')).toBe(-1);
    expect(sign('-1.5', '-1.25')).toBe(-1);
    expect(sign('-1.25', '-1.5')).toBe(1);
    expect(sign('-12.500', '-0012.5')).toBe(0);
  });

  it('agrees with number order on a grid of small decimals', () => {
    const values = [
      '-10',
      '-2.5',
      '-2.25',
      '-1',
      '-0.01',
      '0',
      '0.01',
      '0.1',
      '1',
      '1.05',
      '2',
      '10',
      '100.5',
    ];
    for (const a of values) {
      for (const b of values) expect(sign(a, b)).toBe(Math.sign(Number(a) - Number(b)));
    }
  });
});

describe('compileWhere', () => {
  it('compares integer columns exactly, also bigint values beyond 2^53', () => {
    const rows: Row[] = [
      { id: 9007199254740992n, room_id: 1 },
      { id: 9007199254740993n, room_id: 2 },
      { id: 9223372036854775807n, room_id: 3 },
      { id: -9223372036854775808n, room_id: 4 },
    ];
    expect(keep(['id = 9007199254740993'], rows)).toEqual([9007199254740993n]);
    expect(keep(['id > 9007199254740992'], rows)).toEqual([9007199254740993n, 9223372036854775807n]);
    expect(keep(['id < 0'], rows)).toEqual([-9223372036854775808n]);
    expect(keep(['id IN (9223372036854775807, -9223372036854775808)'], rows)).toEqual([
      9223372036854775807n,
      -9223372036854775808n,
    ]);
    expect(keep(['room_id >= 2', 'room_id <> 3'], rows)).toEqual([9007199254740993n, -9223372036854775808n]);
    expect(keep(["room_id = '+2'"], rows)).toEqual([9007199254740993n]);
  });

  it('compares BIGINT UNSIGNED, which arrives as an exact decimal string', () => {
    const rows: Row[] = [
      { id: 1, big: '18446744073709551615' },
      { id: 2, big: '18446744073709551614' },
      { id: 3, big: '9' },
      { id: 4, big: '10' },
    ];
    expect(keep(['big = 18446744073709551615'], rows)).toEqual([1]);
    expect(keep(['big >= 18446744073709551614'], rows)).toEqual([1, 2]);
    expect(keep(['big < 10'], rows)).toEqual([3]);
    expect(keep(['big > 9'], rows)).toEqual([1, 2, 4]);
  });

  it('compares DECIMAL strings as numbers', () => {
    const rows: Row[] = [
      { id: 1, amount: '12.5000000000' },
      { id: 2, amount: '-3.2500000000' },
      { id: 3, amount: '100.0000000000' },
      { id: 4, amount: '0.0000000000' },
    ];
    expect(keep(['amount = 12.5'], rows)).toEqual([1]);
    expect(keep(['amount > 9.99'], rows)).toEqual([1, 3]);
    expect(keep(['amount < 0'], rows)).toEqual([2]);
    expect(keep(['amount = -0'], rows)).toEqual([4]);
    expect(keep(['amount IN (-3.25, 100)'], rows)).toEqual([2, 3]);
  });

  it('compares DOUBLE as numbers', () => {
    const rows: Row[] = [
      { id: 1, score: 1.5 },
      { id: 2, score: -0.25 },
      { id: 3, score: 1e20 },
    ];
    expect(keep(['score = 1.5'], rows)).toEqual([1]);
    expect(keep(['score < 0'], rows)).toEqual([2]);
    expect(keep(['score >= 1e10'], rows)).toEqual([3]);
    expect(keep(['score != 1.5'], rows)).toEqual([2, 3]);
  });

  it('compares VARCHAR as text', () => {
    const rows: Row[] = [
      { id: 1, name: 'Ada' },
      { id: 2, name: "it's" },
      { id: 3, name: 'Bob' },
    ];
    expect(keep(["name = 'Ada'"], rows)).toEqual([1]);
    expect(keep(["name = 'it''s'"], rows)).toEqual([2]);
    expect(keep(["name > 'B'"], rows)).toEqual([2, 3]);
    expect(keep(["name IN ('Bob', 'Eve')"], rows)).toEqual([3]);
  });

  it('compares VARBINARY to 0x-hex literals byte by byte', () => {
    const rows: Row[] = [
      { id: 1, hash: Buffer.from('00ff', 'hex') },
      { id: 2, hash: Buffer.from('0100', 'hex') },
      { id: 3, hash: Buffer.alloc(0) },
    ];
    expect(keep(['hash = 0x00FF'], rows)).toEqual([1]);
    expect(keep(['hash > 0x00ff'], rows)).toEqual([2]);
    expect(keep(['hash = 0x'], rows)).toEqual([3]);
    expect(keep(["hash IN ('0x0100', 0xdead)"], rows)).toEqual([2]);
    expect(rejection(() => keep(["hash = 'abc'"], rows)).code).toBe('BAD_ARGUMENT');
    expect(rejection(() => keep(['hash = 0x0'], rows)).code).toBe('BAD_ARGUMENT');
  });

  it('never lets NULL equal or differ from anything; IS NULL and IS NOT NULL find it', () => {
    const rows: Row[] = [{ id: 1, name: null }, { id: 2, name: 'Ada' }, { id: 3 }];
    expect(keep(["name = 'Ada'"], rows)).toEqual([2]);
    expect(keep(["name != 'Ada'"], rows)).toEqual([]);
    expect(keep(['name = NULL'], rows)).toEqual([]);
    expect(keep(['name != NULL'], rows)).toEqual([]);
    expect(keep(["name IN ('Ada', NULL)"], rows)).toEqual([2]);
    expect(keep(['name IS NULL'], rows)).toEqual([1, 3]);
    expect(keep(['name IS NOT NULL'], rows)).toEqual([2]);
    expect(keep(['room_id < 5'], [{ id: 4, room_id: null }])).toEqual([]);
  });

  it('refuses a column the table does not have, naming the table and listing its columns', () => {
    const err = rejection(() => keep(['roomid = 1'], []));
    expect(err.code).toBe('BAD_ARGUMENT');
    expect(err.message).toContain('chat.messages');
    expect(err.message).toContain('"roomid"');
    expect(err.hint).toBe('its columns are id, room_id, big, amount, score, name, hash');
  });

  it('refuses a literal that is not a value of a numeric column', () => {
    for (const where of [
      "room_id = 'abc'",
      'room_id = 1.5',
      'id IN (1, x)',
      'big = -x',
      'amount > 1e3',
      'score = abc',
    ]) {
      const err = rejection(() => keep([where], []));
      expect(err.code).toBe('BAD_ARGUMENT');
      expect(err.message).toContain(where);
    }
  });
});
