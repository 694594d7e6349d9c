// `--where` filters: `<column> <op> <value>` on the restored rows (several are ANDed), checked against the
// table's columns before anything is read.

import { TidemarkError, type ColumnDef, type Row, type RowValue } from '../core/index.js';

export type WhereOp = '=' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'is null' | 'is not null';

export interface WhereClause {
  text: string;
  column: string;
  op: WhereOp;
  values: (string | null)[];
}

// `==` comes before `=`, or `a == 1` would read as `a = '= 1'`. A backticked column may hold any character
// but a backtick.
const CLAUSE =
  /^\s*(?:`([^`]+)`|([^`\s=<>!]+))\s*(==|=|!=|<>|<=|>=|<|>|\s+in\s+|\s+is\s+not\s+null\s*$|\s+is\s+null\s*$)\s*(.*?)\s*$/is;

function literal(text: string, where: string): string | null {
  const t = text.trim();
  if (/^null$/i.test(t)) return null;
  const quoted = /^'((?:[^']|'')*)'$/s.exec(t) ?? /^"((?:[^"]|"")*)"$/s.exec(t);
  if (quoted) return (quoted[1] ?? '').replace(/''/g, "'").replace(/""/g, '"');
  if (t === '' || /[\s,()]/.test(t)) {
    throw new TidemarkError('BAD_ARGUMENT', `--where "${where}": cannot read the value "${t}"`, {
      hint: 'quote text values: --where "name = \'Ada Lovelace\'"',
    });
  }
  return t;
}

export function parseWhere(text: string): WhereClause {
  const m = CLAUSE.exec(text);
  if (!m) {
    throw new TidemarkError('BAD_ARGUMENT', `--where "${text}" is not a filter`, {
      hint: "write <column> <op> <value> with op one of = != < <= > >= IN IS NULL, e.g. --where 'room_id = 42'",
    });
  }
  const column = (m[1] ?? m[2]) as string;
  const rawOp = (m[3] ?? '').trim().toLowerCase().replace(/\s+/g, ' ');
  const rest = m[4] ?? '';
  if (rawOp === 'is null' || rawOp === 'is not null') return { text, column, op: rawOp, values: [] };
  if (rawOp === 'in') {
    const list = /^\((.*)\)$/s.exec(rest.trim());
    if (!list) {
      throw new TidemarkError('BAD_ARGUMENT', `--where "${text}": IN needs a list in parentheses`, {
        hint: "e.g. --where 'room_id IN (42, 43)'",
      });
    }
    const values = (list[1] ?? '').match(/'(?:[^']|'')*'|"(?:[^"]|"")*"|[^,]+/g) ?? [];
    return { text, column, op: 'in', values: values.map((v) => literal(v, text)) };
  }
  const op: WhereOp = rawOp === '==' ? '=' : rawOp === '<>' ? '!=' : (rawOp as WhereOp);
  return { text, column, op, values: [literal(rest, text)] };
}

const INTEGER = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'bigint', 'year']);

/** Compares two exact decimal texts (optional sign, digits, optional fraction). */
export function compareDecimals(a: string, b: string): number {
  const norm = (s: string) => {
    const [i = '0', f = ''] = s.replace(/^[+-]/, '').split('.');
    const int = i.replace(/^0+/, '');
    const frac = f.replace(/0+$/, '');
    return { neg: s.startsWith('-') && (int !== '' || frac !== ''), int, frac };
  };
  const x = norm(a);
  const y = norm(b);
  if (x.neg !== y.neg) return x.neg ? -1 : 1;
  const sign = x.neg ? -1 : 1;
  if (x.int.length !== y.int.length) return sign * (x.int.length - y.int.length);
  if (x.int !== y.int) return sign * (x.int < y.int ? -1 : 1);
  const len = Math.max(x.frac.length, y.frac.length);
  const fx = x.frac.padEnd(len, '0');
  const fy = y.frac.padEnd(len, '0');
  return fx === fy ? 0 : sign * (fx < fy ? -1 : 1);
}

/** A compiled filter: a predicate over rows of one table version, or an error naming what is wrong. */
export function compileWhere(clauses: readonly WhereClause[], columns: readonly ColumnDef[], table: string) {
  const byName = new Map(columns.map((c) => [c.name, c]));
  const tests = clauses.map((w) => {
    const column = byName.get(w.column);
    if (!column) {
      throw new TidemarkError('BAD_ARGUMENT', `--where "${w.text}": ${table} has no column "${w.column}"`, {
        hint: `its columns are ${columns.map((c) => c.name).join(', ')}`,
      });
    }
    const cmp = comparer(column, w);
    return (row: Row): boolean => {
      const v = row[w.column] ?? null;
      if (w.op === 'is null') return v === null;
      if (w.op === 'is not null') return v !== null;
      if (v === null) return false;
      if (w.op === 'in') return w.values.some((x) => x !== null && cmp(v, x) === 0);
      const x = w.values[0];
      if (x === null || x === undefined) return false;
      const c = cmp(v, x);
      switch (w.op) {
        case '=':
          return c === 0;
        case '!=':
          return c !== 0;
        case '<':
          return c < 0;
        case '<=':
          return c <= 0;
        case '>':
          return c > 0;
        default:
          return c >= 0;
      }
    };
  });
  return (row: Row): boolean => tests.every((t) => t(row));
}

function comparer(column: ColumnDef, w: WhereClause): (v: RowValue, x: string) => number {
  const check = (ok: boolean, x: string) => {
    if (!ok) {
      throw new TidemarkError(
        'BAD_ARGUMENT',
        `--where "${w.text}": "${x}" is not a value of ${column.name} (${column.type})`,
      );
    }
  };
  if (INTEGER.has(column.type) && !(column.type === 'bigint' && column.unsigned)) {
    for (const x of w.values) if (x !== null) check(/^[+-]?\d+$/.test(x), x);
    return (v, x) => {
      const a = BigInt(v as number | bigint);
      const b = BigInt(x);
      return a < b ? -1 : a > b ? 1 : 0;
    };
  }
  if (column.type === 'decimal' || column.type === 'bigint') {
    for (const x of w.values) if (x !== null) check(/^[+-]?(\d+(\.\d*)?|\.\d+)$/.test(x), x);
    return (v, x) => compareDecimals(String(v), x);
  }
  if (column.type === 'float' || column.type === 'double') {
    for (const x of w.values) if (x !== null) check(Number.isFinite(Number(x)), x);
    return (v, x) => (v as number) - Number(x);
  }
  if (
    ['bit', 'binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob', 'geometry'].includes(
      column.type,
    )
  ) {
    for (const x of w.values) if (x !== null) check(/^0x([0-9a-f]{2})*$/i.test(x), x);
    return (v, x) => Buffer.compare(v as Buffer, Buffer.from(x.slice(2), 'hex'));
  }
  return (v, x) => {
    const a = String(v);
    return a < x ? -1 : a > x ? 1 : 0;
  };
}
