import { describe, expect, it } from 'vitest';
import { keyColumns, parseColumnType } from './table-schema.js';

describe('parseColumnType', () => {
  it('reads integer types with their signedness', () => {
    expect(parseColumnType('a', 'bigint(20) unsigned')).toEqual({
      name: 'a',
      type: 'bigint',
      unsigned: true,
    });
    expect(parseColumnType('b', 'int(11)')).toEqual({ name: 'b', type: 'int', unsigned: false });
    expect(parseColumnType('c', 'tinyint(1)')).toEqual({ name: 'c', type: 'tinyint', unsigned: false });
  });

  it('reads DECIMAL precision and scale, and temporal fractional digits', () => {
    expect(parseColumnType('d', 'decimal(30,10)')).toMatchObject({
      type: 'decimal',
      precision: 30,
      scale: 10,
    });
    expect(parseColumnType('d', 'decimal(5,0) unsigned')).toMatchObject({
      precision: 5,
      scale: 0,
      unsigned: true,
    });
    expect(parseColumnType('t', 'datetime(6)')).toEqual({ name: 't', type: 'datetime', fsp: 6 });
    expect(parseColumnType('t', 'timestamp')).toEqual({ name: 't', type: 'timestamp', fsp: 0 });
    expect(parseColumnType('t', 'time(3)')).toEqual({ name: 't', type: 'time', fsp: 3 });
  });

  it('reads ENUM and SET values, including quotes, commas and the empty value', () => {
    expect(parseColumnType('e', "enum('a','in-progress','it''s','x,y','')").values).toEqual([
      'a',
      'in-progress',
      "it's",
      'x,y',
      '',
    ]);
    expect(parseColumnType('s', "set('x','y')")).toEqual({ name: 's', type: 'set', values: ['x', 'y'] });
  });

  it('folds aliases and spatial subtypes into their base type', () => {
    expect(parseColumnType('p', 'point').type).toBe('geometry');
    expect(parseColumnType('n', 'numeric(4,1)').type).toBe('decimal');
    expect(parseColumnType('b', 'bit(10)')).toEqual({ name: 'b', type: 'bit', bits: 10 });
  });

  it('refuses a type it cannot capture, naming the column and how to exclude it', () => {
    expect(() => parseColumnType('v', 'vector(3)')).toThrow(/column v has the type "vector\(3\)"/);
  });

  it('uses every column as the key of a table without a primary key', () => {
    const columns = [parseColumnType('a', 'int'), parseColumnType('b', 'text')];
    expect(keyColumns({ db: 'd', table: 't', columns, primaryKey: [] })).toEqual(['a', 'b']);
    expect(keyColumns({ db: 'd', table: 't', columns, primaryKey: ['b'] })).toEqual(['b']);
  });
});
