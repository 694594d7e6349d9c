import { Binary, Decimal128, Long } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { documentId, parseJsonLosslessly, rowToBson } from './bson-row.js';
import { parseColumnType } from './table-schema.js';

const columns = [
  ['id', 'bigint(20) unsigned'],
  ['room_id', 'int(11)'],
  ['seq', 'int(10) unsigned'],
  ['karma', 'bigint(20)'],
  ['price', 'decimal(20,6)'],
  ['ratio', 'double'],
  ['sent_at', 'datetime(6)'],
  ['meta', 'json'],
  ['blob', 'varbinary(10)'],
  ['tags', "set('a','b')"],
].map(([n, t]) => parseColumnType(n as string, t as string));

const row = {
  id: '18446744073709551615',
  room_id: 42,
  seq: 4294967295n,
  karma: -9223372036854775808n,
  price: '-12345678901234.000001',
  ratio: 0.1,
  sent_at: '2026-03-01 10:03:12.000001',
  meta: '{"a": [1, 2.5, "x"], "b": {"c": null}}',
  blob: Buffer.from([0, 255]),
  tags: 'a,b',
};

describe('rows as MongoDB documents', () => {
  it('keeps every value exact, with Decimal128 where the server has it and text where not', () => {
    const doc = rowToBson(columns, row, { decimal128: true, nestedArrays: true });
    expect(doc.id).toEqual(Decimal128.fromString('18446744073709551615'));
    expect(doc.room_id).toBe(42);
    expect(doc.seq).toEqual(Long.fromBigInt(4294967295n));
    expect(doc.karma).toEqual(Long.fromBigInt(-9223372036854775808n));
    expect(doc.price).toEqual(Decimal128.fromString('-12345678901234.000001'));
    expect(doc.sent_at).toBe('2026-03-01 10:03:12.000001');
    expect(doc.meta).toEqual({ a: [1, 2.5, 'x'], b: { c: null } });
    expect(doc.blob).toEqual(new Binary(Buffer.from([0, 255])));
    expect(doc.tags).toBe('a,b');
    const ferret = rowToBson(columns, row, { decimal128: false, nestedArrays: false });
    expect(ferret.id).toBe('18446744073709551615');
    expect(ferret.price).toBe('-12345678901234.000001');
  });

  it('stores JSON as a document only where parsing loses nothing', () => {
    expect(parseJsonLosslessly('{"n": 9007199254740993}')).toBeUndefined();
    expect(parseJsonLosslessly('[0.12345678901234567]')).toBeUndefined();
    expect(parseJsonLosslessly('{"$set": 1}')).toBeUndefined();
    expect(parseJsonLosslessly('{"a.b": 1}')).toBeUndefined();
    expect(parseJsonLosslessly('not json')).toBeUndefined();
    expect(parseJsonLosslessly('{"s": "9007199254740993 in a string", "n": -1e3, "z": 0.0}')).toEqual({
      s: '9007199254740993 in a string',
      n: -1000,
      z: 0,
    });
  });

  it('takes _id as text from the key column, or a JSON array of the key columns in key order', () => {
    expect(documentId(['room_id'], row)).toBe('42');
    expect(documentId(['id'], row)).toBe('18446744073709551615');
    expect(documentId(['room_id', 'karma', 'blob'], row)).toBe('["42","-9223372036854775808","0x00ff"]');
  });

  it('keeps JSON with arrays inside arrays as text where the server refuses them', () => {
    expect(parseJsonLosslessly('{"m": [[1, 2]]}', false)).toBeUndefined();
    expect(parseJsonLosslessly('{"m": [[1, 2]]}', true)).toEqual({ m: [[1, 2]] });
    expect(parseJsonLosslessly('[{"a": [1]}]', false)).toEqual([{ a: [1] }]);
  });
});
