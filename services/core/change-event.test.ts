import { describe, expect, it } from 'vitest';
import { bigintToBytes, bytesToBigint, decimalToUnscaled, unscaledToDecimal } from './avro.js';
import { encodeKey, TableCodec, type ChangeEvent, type RowValue } from './change-event.js';
import { makePosition } from './position.js';
import { parseColumnType, type TableSchema } from './table-schema.js';

const allTypes: TableSchema = {
  db: 'chat',
  table: 'all_types',
  primaryKey: ['id'],
  columns: [
    ['id', 'bigint(20) unsigned'],
    ['i8', 'tinyint(4)'],
    ['i32', 'int(11)'],
    ['u32', 'int(10) unsigned'],
    ['i64', 'bigint(20)'],
    ['dec', 'decimal(30,10)'],
    ['f32', 'float'],
    ['f64', 'double'],
    ['bits', 'bit(10)'],
    ['day', 'date'],
    ['t', 'time(3)'],
    ['dt', 'datetime(6)'],
    ['ts', 'timestamp(6)'],
    ['yr', 'year(4)'],
    ['body', 'text'],
    ['blob', 'blob'],
    ['doc', 'json'],
    ['state', "enum('a','in-progress','')"],
    ['tags', "set('x','y','z')"],
    ['geo', 'geometry'],
    ['weird name-é', 'varchar(10)'],
  ].map(([name, type]) => parseColumnType(name as string, type as string)),
};

const extremes = {
  id: '18446744073709551615',
  i8: -128,
  i32: -2147483648,
  u32: 4294967295n,
  i64: -9223372036854775808n,
  dec: '-12345678901234567890.0123456789',
  f32: Math.fround(3.14159),
  f64: 2.718281828459045,
  bits: Buffer.from([0x02, 0xaa]),
  day: '0000-00-00',
  t: '-838:59:58.123',
  dt: '2024-03-01 10:03:11.123456',
  ts: '2024-03-01 02:03:11.654321',
  yr: 2024,
  body: '你好 👋 𝄞',
  blob: Buffer.from([0, 255, 1]),
  doc: '{"a": [1, 2.50, "z"], "b": null}',
  state: 'in-progress',
  tags: 'x,z',
  geo: Buffer.from('0101000000000000000000f03f0000000000000040', 'hex'),
  'weird name-é': null,
};

function event(codec: TableCodec): ChangeEvent {
  return {
    op: 'u',
    before: { ...extremes, body: 'old' },
    after: extremes,
    key: codec.keyOf(extremes),
    tsMs: 1_709_287_391_000,
    pos: makePosition(3, 2_000_000_123, 7, '0-1-99'),
    tx: '0-1-99',
    source: { serverId: 1, db: 'chat', table: 'all_types', schemaVersion: codec.version },
  };
}

describe('TableCodec', () => {
  it('round-trips every MySQL type at its extremes, value for value', () => {
    const codec = new TableCodec(allTypes);
    const e = event(codec);
    expect(codec.decode(codec.encode(e))).toEqual(e);
  });

  it('writes the same bytes in place as it encodes, and says how many bytes a short buffer lacks', () => {
    const codec = new TableCodec(allTypes);
    const events = [
      event(codec),
      { ...event(codec), op: 'd' as const, after: null, tx: null, pos: makePosition(4, 5, 0) },
      { ...event(codec), source: { ...event(codec).source, serverId: 77 } },
      { ...event(codec), source: { ...event(codec).source, db: 'other' } },
      event(codec),
    ];
    for (const e of events) {
      const expected = codec.encode(e);
      const buf = Buffer.alloc(expected.length + 10, 0xee);
      expect(codec.encodeInto(e, buf, 10)).toBe(expected.length + 10);
      expect(buf.subarray(10).equals(expected)).toBe(true);
      for (const short of [0, 5, expected.length - 40, expected.length - 1]) {
        expect(codec.encodeInto(e, Buffer.alloc(short), 0)).toBe(short - expected.length);
      }
    }
  });

  it('gives the same version for the same table shape, and a new one after any column change', () => {
    const a = new TableCodec(allTypes);
    const b = new TableCodec({ ...allTypes, columns: [...allTypes.columns] });
    const widened = new TableCodec({
      ...allTypes,
      columns: allTypes.columns.map((c) => (c.name === 'dec' ? parseColumnType('dec', 'decimal(31,10)') : c)),
    });
    const added = new TableCodec({
      ...allTypes,
      columns: [...allTypes.columns, parseColumnType('extra', 'int')],
    });
    expect(b.version).toBe(a.version);
    expect(new Set([a.version, widened.version, added.version]).size).toBe(3);
  });

  it('rebuilds the same codec from the schema it published', () => {
    const codec = new TableCodec(allTypes);
    const again = TableCodec.fromSchema(JSON.parse(JSON.stringify(codec.schema)) as Record<string, unknown>);
    expect(again.version).toBe(codec.version);
    expect(again.decode(codec.encode(event(codec)))).toEqual(event(codec));
  });

  it('keys rows by their primary-key values in a stable text form', () => {
    const codec = new TableCodec(allTypes);
    expect(codec.keyOf(extremes)).toBe('["18446744073709551615"]');
    const byId = (id: RowValue) =>
      new TableCodec({ ...allTypes, primaryKey: ['i64'] }).keyOf({ ...extremes, i64: id });
    for (const id of [
      0,
      -7,
      2 ** 53 - 1,
      12345678901234567890n,
      -5n,
      'text "quoted"',
      Buffer.from([9]),
      null,
    ]) {
      expect(byId(id)).toBe(encodeKey([id]));
    }
    expect(encodeKey([42, 7n, Buffer.from([1, 2]), null, 'x'])).toBe(
      '[42,"7",”0x0102”,null,"x"]'.replace(/”/g, '"'),
    );
  });
});

describe('decimal encoding', () => {
  it('keeps every digit of values wider than a double', () => {
    for (const [text, scale] of [
      ['0.00', 2],
      ['-0.01', 2],
      ['99999999999999999999.9999999999', 10],
      ['-99999999999999999999.9999999999', 10],
      ['18446744073709551615', 0],
      ['128', 0],
      ['-128', 0],
      ['-129', 0],
    ] as const) {
      const unscaled = decimalToUnscaled(text, scale);
      expect(bytesToBigint(bigintToBytes(unscaled))).toBe(unscaled);
      expect(unscaledToDecimal(unscaled, scale)).toBe(text);
    }
  });

  it('pads to the column scale and refuses digits the scale would drop', () => {
    expect(unscaledToDecimal(decimalToUnscaled('1.5', 3), 3)).toBe('1.500');
    expect(() => decimalToUnscaled('1.2345', 2)).toThrow(/more than 2 fraction digits/);
    expect(() => decimalToUnscaled('abc', 2)).toThrow(/not a decimal/);
  });
});
