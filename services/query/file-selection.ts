// Which data files of a change table a query must read: the manifest of each file (event-time range,
// position range, min/max of configured columns) against --from/--to and the query's own predicates.
// Every decision keeps its reason, for --explain.

import { compareDecimals } from '../replay/where.js';
import type { ColumnDef, ManifestEntry } from '../core/index.js';
import { changeColumns } from './change-scan.js';
import type { Literal, Predicate } from './sql-shape.js';

export interface TimeWindow {
  /** Inclusive bounds in ms; undefined: open. */
  fromMs: number | undefined;
  toMs: number | undefined;
}

export interface FileDecision {
  entry: ManifestEntry;
  read: boolean;
  /** Why it is skipped (empty when read). */
  reason: string;
}

const TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/** A time literal as microseconds since the epoch (no zone: UTC), or undefined when it is not one. */
export function timeLiteralMicros(text: string): bigint | undefined {
  const m = TIME.exec(text.trim());
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone] = m;
  let ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(ms)) return undefined;
  if (zone && zone.toUpperCase() !== 'Z') {
    const z = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone);
    if (!z) return undefined;
    const minutes = Number(z[2]) * 60 + Number(z[3] ?? 0);
    ms -= (z[1] === '-' ? -1 : 1) * minutes * 60_000;
  }
  return BigInt(ms) * 1000n + BigInt(frac.padEnd(6, '0').slice(0, 6));
}

/** `YYYY-MM-DD HH:MM:SS.ffffff` of a time in microseconds: the form DATETIME/TIMESTAMP text compares in. */
function canonicalTime(micros: bigint): string {
  const ms = Number(micros / 1000n);
  const iso = new Date(ms).toISOString();
  const frac = String(((micros % 1_000_000n) + 1_000_000n) % 1_000_000n).padStart(6, '0');
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${frac}`;
}

const NUMERIC = new Set([
  'tinyint',
  'smallint',
  'mediumint',
  'int',
  'bigint',
  'year',
  'decimal',
  'float',
  'double',
]);
const TEMPORAL = new Set(['date', 'datetime', 'timestamp']);
const TEXT = new Set(['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext', 'enum']);
const ASCII = /^[\x20-\x7e]*$/;

function compareNumbers(a: string, b: string): number | undefined {
  if (/^[+-]?\d+(\.\d+)?$/.test(a) && /^[+-]?\d+(\.\d+)?$/.test(b)) return compareDecimals(a, b);
  const x = Number(a);
  const y = Number(b);
  if (Number.isNaN(x) || Number.isNaN(y)) return undefined;
  return x === y ? 0 : x < y ? -1 : 1;
}

/**
 * Whether values in [min, max] can meet `op literal`, with `compare(value, literal)`; undefined when they
 * cannot be compared (the file is then read).
 */
function rangeCanMeet(
  min: string,
  max: string,
  op: Predicate['op'],
  literal: string,
  compare: (a: string, b: string) => number | undefined,
): boolean | undefined {
  const lo = compare(max, literal);
  const hi = compare(min, literal);
  if (lo === undefined || hi === undefined) return undefined;
  switch (op) {
    case '=':
      return hi <= 0 && lo >= 0;
    case '<':
      return hi < 0;
    case '<=':
      return hi <= 0;
    case '>':
      return lo > 0;
    case '>=':
      return lo >= 0;
  }
}

function literalText(l: Literal): string {
  return l.kind === 'number' ? l.text : `'${l.text}'`;
}

const shown = new WeakMap<readonly ColumnDef[], Map<string, ColumnDef>>();

/** A table's columns by the lower-cased name the query sees them by, worked out once per column list. */
function shownColumns(columns: readonly ColumnDef[]): Map<string, ColumnDef> {
  let byName = shown.get(columns);
  if (!byName) {
    byName = new Map();
    for (const c of changeColumns(columns)) if (c.column) byName.set(c.name.toLowerCase(), c.column);
    shown.set(columns, byName);
  }
  return byName;
}

/** Why a file cannot hold rows meeting `p`, or undefined when it may. */
export function excludedBy(
  entry: ManifestEntry,
  p: Predicate,
  columns: readonly ColumnDef[],
): string | undefined {
  if (p.column === '_ts') {
    const micros = p.value.kind === 'number' ? undefined : timeLiteralMicros(p.value.text);
    if (micros === undefined) return undefined;
    const floorMs = Number(micros / 1000n);
    const ceilMs = Number((micros + 999n) / 1000n);
    const min = Number(entry.min_ts_ms);
    const max = Number(entry.max_ts_ms);
    const ok =
      p.op === '='
        ? max >= floorMs && min <= ceilMs
        : p.op === '<' || p.op === '<='
          ? min <= ceilMs
          : max >= floorMs;
    return ok
      ? undefined
      : `its events span ${new Date(min).toISOString()} .. ${new Date(max).toISOString()}, the query asks ${p.text}`;
  }
  if (p.column === '_pos') {
    if (p.value.kind !== 'string') return undefined;
    const ok = rangeCanMeet(entry.first_pos, entry.last_pos, p.op, p.value.text, (a, b) =>
      a === b ? 0 : a < b ? -1 : 1,
    );
    return ok === false
      ? `its positions span ${entry.first_pos} .. ${entry.last_pos}, the query asks ${p.text}`
      : undefined;
  }
  // By the name the query sees (a column named like a change field is shown as `<name>_`).
  const column = shownColumns(columns).get(p.column);
  if (!column) return undefined;
  // Min/max of DECIMAL and BIGINT UNSIGNED are kept in text order, FLOAT as the double nearest the float:
  // neither bounds a comparison DuckDB makes, so they prune nothing.
  if (column.type === 'decimal' || column.type === 'float' || (column.type === 'bigint' && column.unsigned)) {
    return undefined;
  }
  // Against a DATE only a date literal bounds it (how a time of day compares depends on the literal's type).
  if (column.type === 'date' && p.value.text.trim().length !== 10) return undefined;
  const stats = entry.column_stats[column.name];
  if (!stats || stats.min === null || stats.max === null) return undefined;
  let ok: boolean | undefined;
  if (NUMERIC.has(column.type) && p.value.kind === 'number') {
    ok = rangeCanMeet(stats.min, stats.max, p.op, p.value.text, compareNumbers);
  } else if (TEMPORAL.has(column.type) && p.value.kind !== 'number') {
    const literal = timeLiteralMicros(p.value.text);
    const min = timeLiteralMicros(stats.min);
    const max = timeLiteralMicros(stats.max);
    if (literal !== undefined && min !== undefined && max !== undefined) {
      ok = rangeCanMeet(canonicalTime(min), canonicalTime(max), p.op, canonicalTime(literal), (a, b) =>
        a === b ? 0 : a < b ? -1 : 1,
      );
    }
  } else if (TEXT.has(column.type) && p.value.kind === 'string') {
    // Equality holds in any order; ranges only where byte order and the stats' order agree (ASCII).
    if (p.op === '=' || [stats.min, stats.max, p.value.text].every((s) => ASCII.test(s))) {
      ok = rangeCanMeet(stats.min, stats.max, p.op, p.value.text, (a, b) => (a === b ? 0 : a < b ? -1 : 1));
    }
  }
  return ok === false
    ? `its ${column.name} spans ${stats.min} .. ${stats.max}, the query asks ${column.name} ${p.op} ${literalText(p.value)}`
    : undefined;
}

/**
 * Decides every file of one table: read when --from/--to overlap it and at least one reference of the
 * table in the query may find rows in it (a reference without predicates needs every file).
 */
export function selectFiles(
  entries: readonly ManifestEntry[],
  window: TimeWindow,
  references: readonly (readonly Predicate[])[],
  columns: readonly ColumnDef[],
): FileDecision[] {
  return entries.map((entry) => {
    if (window.fromMs !== undefined && Number(entry.max_ts_ms) < window.fromMs) {
      return {
        entry,
        read: false,
        reason: `its events end before --from (${new Date(window.fromMs).toISOString()})`,
      };
    }
    if (window.toMs !== undefined && Number(entry.min_ts_ms) > window.toMs) {
      return {
        entry,
        read: false,
        reason: `its events start after --to (${new Date(window.toMs).toISOString()})`,
      };
    }
    const reasons: string[] = [];
    for (const predicates of references) {
      let why: string | undefined;
      for (const p of predicates) {
        why = excludedBy(entry, p, columns);
        if (why) break;
      }
      if (!why) return { entry, read: true, reason: '' };
      reasons.push(why);
    }
    if (reasons.length === 0) return { entry, read: true, reason: '' };
    return { entry, read: false, reason: [...new Set(reasons)].join('; and where named again, ') };
  });
}
