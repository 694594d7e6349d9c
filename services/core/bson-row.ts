// How a captured row looks in MongoDB (the hot replica, restores into MongoDB): exact types, one document.
//
//   TINYINT…INT, YEAR       → int32          BIGINT, INT UNSIGNED → int64 (Long)
//   BIGINT UNSIGNED, DECIMAL → Decimal128 where the server has it, else the exact decimal text
//   FLOAT, DOUBLE           → double         BINARY, BLOB, BIT, geometry (WKB) → binary
//   DATE, TIME, DATETIME, TIMESTAMP → the exact text MySQL shows ('2026-03-01 10:03:12.123456'), which
//     keeps microseconds and zero dates and sorts like time (a BSON date holds only milliseconds)
//   JSON → the parsed document where that loses nothing, else the text
//   CHAR, TEXT, ENUM, SET   → string

import { Binary, Decimal128, Long } from 'mongodb';
import type { Row, RowValue } from './change-event.js';
import type { ColumnDef } from './table-schema.js';

export type BsonValue =
  number | string | Long | Decimal128 | Binary | null | unknown[] | Record<string, unknown>;

export interface BsonMappingOptions {
  /** FerretDB 1.x has no Decimal128: exact decimals are then stored as text. */
  decimal128: boolean;
}

const MAX_SAFE_DIGITS = 15;

/** Whether every number literal in a JSON text survives a JavaScript number unchanged. */
function numbersAreExact(text: string): boolean {
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Skip a string, honouring escapes.
      i++;
      while (i < text.length && text.charCodeAt(i) !== 0x22) i += text.charCodeAt(i) === 0x5c ? 2 : 1;
      i++;
      continue;
    }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      const m = /^-?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?/.exec(text.slice(i, i + 400));
      if (!m) return false;
      const [literal, int = '', frac = ''] = m;
      if (frac === '' && m[3] === undefined) {
        if (!Number.isSafeInteger(Number(literal))) return false;
      } else {
        const digits = (int + frac).replace(/^0+/, '').replace(/0+$/, '');
        const value = Number(literal);
        if (digits.length > MAX_SAFE_DIGITS || !Number.isFinite(value) || (value === 0 && digits !== '')) {
          return false;
        }
      }
      i += literal.length;
      continue;
    }
    i++;
  }
  return true;
}

/** MongoDB refuses field names starting with '$' or holding '.' or NUL in places; such JSON stays text. */
function keysAreStorable(value: unknown): boolean {
  if (Array.isArray(value)) return value.every(keysAreStorable);
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).every(
      ([k, v]) =>
        k.length > 0 && !k.startsWith('$') && !k.includes('.') && !k.includes('\0') && keysAreStorable(v),
    );
  }
  return true;
}

/** The parsed JSON document when parsing loses nothing (numbers, keys); undefined otherwise. */
export function parseJsonLosslessly(text: string): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  return numbersAreExact(text) && keysAreStorable(parsed) ? parsed : undefined;
}

/** Converts one column value; `column` decides the BSON type. */
export function toBson(column: ColumnDef, value: RowValue, o: BsonMappingOptions): BsonValue {
  if (value === null) return null;
  switch (column.type) {
    case 'bigint':
      if (column.unsigned) return o.decimal128 ? Decimal128.fromString(String(value)) : String(value);
      return Long.fromBigInt(BigInt(value as bigint | number));
    case 'int':
      return column.unsigned ? Long.fromBigInt(BigInt(value as bigint | number)) : (value as number);
    case 'decimal':
      return o.decimal128 ? Decimal128.fromString(String(value)) : String(value);
    case 'json': {
      const parsed = parseJsonLosslessly(String(value));
      return parsed === undefined ? String(value) : (parsed as BsonValue);
    }
    default:
      if (Buffer.isBuffer(value)) return new Binary(value);
      return typeof value === 'bigint' ? Long.fromBigInt(value) : value;
  }
}

/** A whole row as document fields, in column order. */
export function rowToBson(
  columns: readonly ColumnDef[],
  row: Row,
  o: BsonMappingOptions,
): Record<string, BsonValue> {
  const doc: Record<string, BsonValue> = {};
  for (const column of columns) doc[column.name] = toBson(column, row[column.name] ?? null, o);
  return doc;
}

/** `_id` of a row: the key column's value, or a sub-document of the key columns in key order. */
export function documentId(
  columns: readonly ColumnDef[],
  keyColumns: readonly string[],
  row: Row,
  o: BsonMappingOptions,
): BsonValue {
  const byName = new Map(columns.map((c) => [c.name, c]));
  const value = (name: string) => {
    const column = byName.get(name);
    return column ? toBson(column, row[name] ?? null, o) : null;
  };
  if (keyColumns.length === 1) return value(keyColumns[0] as string);
  return Object.fromEntries(keyColumns.map((name) => [name, value(name)]));
}
