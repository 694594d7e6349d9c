// Turns rows as the binlog client or the snapshot query hand them over into the one exact form of the
// change event (see RowValue), dropping excluded columns and masking masked ones on the way.

import {
  bigintToBytes,
  decimalToUnscaled,
  TableCodec,
  TidemarkError,
  unscaledToDecimal,
  type ColumnDef,
  type Row,
  type RowValue,
  type TableSchema,
} from '../core/index.js';
import type { ColumnRules, MaskKind, TableSelection } from './table-selection.js';

type Normalize = (value: unknown) => RowValue;

function toBuffer(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value);
  return Buffer.from(String(value), 'utf8');
}

function toText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (Array.isArray(value)) return value.join(',');
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return String(value);
  return JSON.stringify(value);
}

function toBigint(value: unknown): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value))
      throw new TidemarkError('INTERNAL', `integer ${value} arrived with lost precision`);
    return BigInt(value);
  }
  return BigInt(toText(value));
}

/** One function per column that gives its exact canonical value, whatever the reader handed over. */
export function normalizer(c: ColumnDef): Normalize {
  const nullable =
    (f: Normalize): Normalize =>
    (v) =>
      v === null || v === undefined ? null : f(v);
  switch (c.type) {
    case 'tinyint':
    case 'smallint':
    case 'mediumint':
      return nullable((v) => Number(v));
    case 'year':
      // The binlog client reports YEAR 0000 as 1900, which no YEAR column can hold.
      return nullable((v) => (Number(v) === 1900 ? 0 : Number(v)));
    case 'int':
      return nullable(c.unsigned ? (v) => toBigint(v) : (v) => Number(v));
    case 'bigint':
      return nullable(c.unsigned ? (v) => toBigint(v).toString() : (v) => toBigint(v));
    case 'decimal': {
      const scale = c.scale ?? 0;
      return nullable((v) => unscaledToDecimal(decimalToUnscaled(toText(v), scale), scale));
    }
    case 'float':
      return nullable((v) => Math.fround(Number(v)));
    case 'double':
      return nullable((v) => Number(v));
    case 'bit': {
      const width = Math.ceil((c.bits ?? 1) / 8);
      return nullable((v) => {
        const raw = typeof v === 'number' || typeof v === 'bigint' ? bigintToBytes(BigInt(v)) : toBuffer(v);
        const trimmed = raw.length > width ? raw.subarray(raw.length - width) : raw;
        return trimmed.length === width
          ? trimmed
          : Buffer.concat([Buffer.alloc(width - trimmed.length), trimmed]);
      });
    }
    case 'geometry':
      return nullable((v) => {
        if (!Buffer.isBuffer(v)) {
          throw new TidemarkError(
            'INTERNAL',
            `geometry column ${c.name} arrived decoded instead of as bytes`,
          );
        }
        // MySQL stores a geometry as a 4-byte SRID followed by standard WKB; the WKB is what travels.
        return v.subarray(4);
      });
    case 'binary':
    case 'varbinary':
    case 'tinyblob':
    case 'blob':
    case 'mediumblob':
    case 'longblob':
      return nullable(toBuffer);
    default:
      return nullable(toText);
  }
}

const MASKED_TYPE: ColumnDef['type'] = 'varchar';

/** The table as tidemark publishes it, and how to turn a source row into a published row. */
export interface TableShape {
  readonly codec: TableCodec;
  /** Maps a row as read (all source columns) to the published row (excluded dropped, masked replaced). */
  mapRow(raw: Readonly<Record<string, unknown>>): Row;
}

export function buildShape(source: TableSchema, rules: ColumnRules, selection: TableSelection): TableShape {
  const name = `${source.db}.${source.table}`;
  for (const column of [...rules.exclude, ...Object.keys(rules.mask)]) {
    if (!source.columns.some((c) => c.name === column)) {
      throw new TidemarkError(
        'CONFIG_INVALID',
        `source.columns.${name} names the column ${column}, which ${name} does not have`,
        {
          hint: `the columns of ${name} are: ${source.columns.map((c) => c.name).join(', ')}`,
        },
      );
    }
  }
  for (const key of source.primaryKey) {
    const mask = rules.mask[key];
    if (rules.exclude.includes(key) || mask === 'null' || mask === 'redact') {
      throw new TidemarkError(
        'CONFIG_INVALID',
        `source.columns.${name}: the primary-key column ${key} cannot be excluded, nulled or redacted`,
        {
          hint: 'rows are identified by their primary key; use a hash mask on it instead, or leave it',
        },
      );
    }
  }
  const kept = source.columns.filter((c) => !rules.exclude.includes(c.name));
  const published: TableSchema = {
    ...source,
    columns: kept.map((c) => {
      const mask = rules.mask[c.name];
      return mask === 'hash' || mask === 'redact' ? { name: c.name, type: MASKED_TYPE } : c;
    }),
  };
  const steps = kept.map((c) => {
    const normalize = normalizer(c);
    const mask: MaskKind | undefined = rules.mask[c.name];
    return {
      name: c.name,
      value: mask === undefined ? normalize : (v: unknown) => selection.maskValue(mask, normalize(v)),
    };
  });
  return {
    codec: new TableCodec(published),
    mapRow(raw) {
      const row: Row = {};
      for (const step of steps) row[step.name] = step.value(raw[step.name]);
      return row;
    },
  };
}
