// The shape of a captured table as tidemark sees it: columns with their MySQL types, and the primary key.
// Built from INFORMATION_SCHEMA (snapshot) or from the binlog's own table-map metadata (streaming); both
// give the same ColumnDef for the same column, so both produce the same Avro schema.

import { TidemarkError } from './errors.js';

export type MysqlType =
  | 'tinyint'
  | 'smallint'
  | 'mediumint'
  | 'int'
  | 'bigint'
  | 'decimal'
  | 'float'
  | 'double'
  | 'bit'
  | 'date'
  | 'time'
  | 'datetime'
  | 'timestamp'
  | 'year'
  | 'char'
  | 'varchar'
  | 'tinytext'
  | 'text'
  | 'mediumtext'
  | 'longtext'
  | 'binary'
  | 'varbinary'
  | 'tinyblob'
  | 'blob'
  | 'mediumblob'
  | 'longblob'
  | 'json'
  | 'enum'
  | 'set'
  | 'geometry';

export interface ColumnDef {
  readonly name: string;
  readonly type: MysqlType;
  readonly unsigned?: boolean;
  /** DECIMAL precision and scale. */
  readonly precision?: number;
  readonly scale?: number;
  /** Fractional seconds digits of TIME, DATETIME, TIMESTAMP. */
  readonly fsp?: number;
  /** Width of BIT(n). */
  readonly bits?: number;
  /** Allowed values of ENUM and SET. */
  readonly values?: readonly string[];
}

export interface TableSchema {
  readonly db: string;
  readonly table: string;
  readonly columns: readonly ColumnDef[];
  /** Primary-key column names in key order; empty when the table has none (every column then forms the key). */
  readonly primaryKey: readonly string[];
}

const ALIASES: Record<string, MysqlType> = {
  integer: 'int',
  bool: 'tinyint',
  boolean: 'tinyint',
  dec: 'decimal',
  numeric: 'decimal',
  fixed: 'decimal',
  real: 'double',
  'double precision': 'double',
  point: 'geometry',
  linestring: 'geometry',
  polygon: 'geometry',
  multipoint: 'geometry',
  multilinestring: 'geometry',
  multipolygon: 'geometry',
  geometrycollection: 'geometry',
  geomcollection: 'geometry',
};

const KNOWN = new Set<string>([
  'tinyint',
  'smallint',
  'mediumint',
  'int',
  'bigint',
  'decimal',
  'float',
  'double',
  'bit',
  'date',
  'time',
  'datetime',
  'timestamp',
  'year',
  'char',
  'varchar',
  'tinytext',
  'text',
  'mediumtext',
  'longtext',
  'binary',
  'varbinary',
  'tinyblob',
  'blob',
  'mediumblob',
  'longblob',
  'json',
  'enum',
  'set',
  'geometry',
]);

/** The quoted values of `enum('a','b''c')` / `set(...)`, unescaped. */
function parseValueList(args: string): string[] {
  const values: string[] = [];
  const re = /'((?:[^'\\]|''|\\.)*)'/g;
  for (let m = re.exec(args); m !== null; m = re.exec(args)) {
    values.push((m[1] ?? '').replace(/''/g, "'").replace(/\\(.)/g, '$1'));
  }
  return values;
}

/**
 * Reads an INFORMATION_SCHEMA.COLUMNS.COLUMN_TYPE such as `bigint(20) unsigned`, `decimal(30,10)`,
 * `datetime(6)` or `enum('a','b')` into a ColumnDef.
 */
export function parseColumnType(name: string, columnType: string): ColumnDef {
  const text = columnType.trim();
  const match = /^([a-z ]+?)\s*(?:\((.*)\))?\s*((?:unsigned|signed|zerofill|\s)*)$/is.exec(text);
  const rawBase = match?.[1]?.toLowerCase().trim();
  const base = rawBase === undefined ? undefined : (ALIASES[rawBase] ?? rawBase);
  if (!match || base === undefined || !KNOWN.has(base)) {
    throw new TidemarkError(
      'UNSUPPORTED_TYPE',
      `column ${name} has the type "${columnType}", which tidemark cannot capture`,
      {
        hint: 'exclude the column with source.columns.<db.table>.exclude, or report the type',
      },
    );
  }
  const type = base as MysqlType;
  const args = match[2];
  const unsigned = /unsigned/i.test(match[3] ?? '');
  const numbers = args === undefined ? [] : args.split(',').map((a) => Number(a.trim()));
  switch (type) {
    case 'tinyint':
    case 'smallint':
    case 'mediumint':
    case 'int':
    case 'bigint':
      return { name, type, unsigned };
    case 'decimal':
      return { name, type, unsigned, precision: numbers[0] ?? 10, scale: numbers[1] ?? 0 };
    case 'float':
    case 'double':
      return { name, type, unsigned };
    case 'bit':
      return { name, type, bits: numbers[0] ?? 1 };
    case 'time':
    case 'datetime':
    case 'timestamp':
      return { name, type, fsp: numbers[0] ?? 0 };
    case 'enum':
    case 'set':
      return { name, type, values: parseValueList(args ?? '') };
    default:
      return { name, type };
  }
}

/** Columns that identify a row: the primary key, or every column for a table without one. */
export function keyColumns(schema: TableSchema): string[] {
  return schema.primaryKey.length > 0 ? [...schema.primaryKey] : schema.columns.map((c) => c.name);
}
