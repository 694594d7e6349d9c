// How a captured row looks in MongoDB (the hot replica, restores into MongoDB): exact types, one document.
//
//   TINYINT…INT, YEAR       → int32          BIGINT, INT UNSIGNED → int64 (Long)
//   BIGINT UNSIGNED, DECIMAL → Decimal128 where the server has it, else the exact decimal text
//   FLOAT, DOUBLE           → double         BINARY, BLOB, BIT, geometry (WKB) → binary
//   DATE, TIME, DATETIME, TIMESTAMP → the exact text MySQL shows ('2026-03-01 10:03:12.123456'), which
//     keeps microseconds and zero dates and sorts like time (a BSON date holds only milliseconds)
//   JSON → the parsed document where that loses nothing, else the text
//   CHAR, TEXT, ENUM, SET   → string

import { Binary, Decimal128, Long, type MongoClient } from 'mongodb';
import type { Row, RowValue } from './change-event.js';
import type { ColumnDef } from './table-schema.js';

export type BsonValue =
  number | string | Long | Decimal128 | Binary | null | unknown[] | Record<string, unknown>;

export interface BsonMappingOptions {
  /** FerretDB 1.x has no Decimal128: exact decimals are then stored as text. */
  decimal128: boolean;
  /** FerretDB 1.x refuses arrays inside arrays: such JSON then stays text. */
  nestedArrays: boolean;
}

/**
 * What the server behind a connected client stores: FerretDB 1.x (it reports `ferretdbVersion`) has no
 * Decimal128 and refuses arrays inside arrays.
 */
export async function serverBsonMapping(
  client: MongoClient,
): Promise<BsonMappingOptions & { ferret: boolean }> {
  const build = await client.db('admin').command({ buildInfo: 1 });
  const ferret = 'ferretdbVersion' in build;
  return { ferret, decimal128: !ferret, nestedArrays: !ferret };
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
function keysAreStorable(value: unknown, nestedArrays: boolean, inArray = false): boolean {
  if (Array.isArray(value)) {
    return (nestedArrays || !inArray) && value.every((v) => keysAreStorable(v, nestedArrays, true));
  }
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).every(
      ([k, v]) =>
        k.length > 0 &&
        !k.startsWith('$') &&
        !k.includes('.') &&
        !k.includes('\0') &&
        keysAreStorable(v, nestedArrays),
    );
  }
  return true;
}

/** The parsed JSON document when parsing loses nothing (numbers, keys) and the server can store it. */
export function parseJsonLosslessly(text: string, nestedArrays = true): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  return numbersAreExact(text) && keysAreStorable(parsed, nestedArrays) ? parsed : undefined;
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
      const parsed = parseJsonLosslessly(String(value), o.nestedArrays);
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

/**
 * `_id` of a row: the primary key as text — the value itself for a one-column key ("42", "ann@example.com",
 * 0x-hex for bytes), a JSON array for a composite one ('[1,"owner"]'). Text, because MongoDB-compatible
 * servers without real indexes (FerretDB 1.x on SQLite) look up only string or ObjectId ids directly; the key
 * columns stay in the document with their own types for queries.
 */
export function documentId(keyColumns: readonly string[], row: Row): string {
  const text = (v: RowValue | undefined) =>
    v === null || v === undefined ? null : Buffer.isBuffer(v) ? `0x${v.toString('hex')}` : String(v);
  if (keyColumns.length === 1) return text(row[keyColumns[0] as string]) ?? 'null';
  return JSON.stringify(keyColumns.map((c) => text(row[c])));
}
