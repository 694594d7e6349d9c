// Query results out: an aligned table, CSV, JSON or JSON Lines on a stream, or a file written by DuckDB
// itself (Parquet, CSV, JSON Lines) with --out. Values stay exact: 64-bit integers, decimals and times are
// printed as DuckDB's text, never through a float.

import { existsSync } from 'node:fs';
import { extname } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { TidemarkError } from '../core/index.js';
import { quoteString } from './change-scan.js';
import type { QuerySession } from './session.js';

export type OutputFormat = 'table' | 'csv' | 'json' | 'jsonl';

/** Rows shown by the table format; more need --format or --out. */
export const TABLE_ROWS = 10_000;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const cellText = (v: Json): string => (v === null ? 'NULL' : typeof v === 'string' ? v : JSON.stringify(v));

/** An aligned text table, numbers right-aligned. */
export function alignedTable(columns: readonly string[], rows: readonly Json[][]): string {
  const cells = rows.map((r) => r.map(cellText));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => (r[i] as string).length)));
  const numeric = columns.map((_, i) =>
    rows.every((r) => {
      const v = r[i];
      return v === null || typeof v === 'number' || (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v));
    }),
  );
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => (numeric[i] ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(columns), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

export interface WriteResult {
  rows: number;
  truncated: boolean;
}

/** Runs the query and writes its rows to `out` in the format asked. */
export async function writeResult(
  session: QuerySession,
  sql: string,
  format: OutputFormat,
  out: (text: string) => void,
): Promise<WriteResult> {
  try {
    return await write(session, sql, format, out);
  } catch (err) {
    if (err instanceof TidemarkError) throw err;
    throw session.failure(err, sql);
  }
}

async function write(
  session: QuerySession,
  sql: string,
  format: OutputFormat,
  out: (text: string) => void,
): Promise<WriteResult> {
  const result = await session.connection.stream(sql);
  const columns = result.deduplicatedColumnNames();
  let rows = 0;
  if (format === 'table') {
    const kept: Json[][] = [];
    let truncated = false;
    for await (const batch of result.yieldRowsJson()) {
      for (const r of batch) {
        rows++;
        if (kept.length < TABLE_ROWS) kept.push(r);
        else truncated = true;
      }
    }
    out(alignedTable(columns, kept));
    out(
      `(${rows} row${rows === 1 ? '' : 's'}${truncated ? `, the first ${TABLE_ROWS} shown: use --format or --out for all` : ''})`,
    );
    return { rows, truncated };
  }
  if (format === 'json') out('[');
  if (format === 'csv') out(stringify([columns]).trimEnd());
  for await (const batch of result.yieldRowObjectJson()) {
    for (const r of batch) {
      if (format === 'csv') {
        // NULL is an empty field; an empty string is quoted, so the two stay apart.
        out(
          stringify([columns.map((c) => (r[c] === null ? null : cellText(r[c] as Json)))], {
            cast: { string: (v) => (v === '' ? { value: '', quote: true } : v) },
          }).trimEnd(),
        );
      } else if (format === 'json') {
        out(`${rows === 0 ? '' : ','}${JSON.stringify(r)}`);
      } else {
        out(JSON.stringify(r));
      }
      rows++;
    }
  }
  if (format === 'json') out(']');
  return { rows, truncated: false };
}

const COPY_FORMATS: Record<string, string> = {
  '.parquet': 'FORMAT parquet, COMPRESSION zstd',
  '.csv': 'FORMAT csv, HEADER true',
  '.jsonl': 'FORMAT json',
  '.ndjson': 'FORMAT json',
  '.json': 'FORMAT json, ARRAY true',
};

/** Writes the query's result to a file by DuckDB's COPY, the format taken from the extension. */
export async function copyResult(
  session: QuerySession,
  sql: string,
  file: string,
  force: boolean,
): Promise<number> {
  const options = COPY_FORMATS[extname(file).toLowerCase()];
  if (!options) {
    throw new TidemarkError(
      'BAD_ARGUMENT',
      `--out ${file}: the file name must end in .parquet, .csv, .jsonl or .json`,
    );
  }
  if (existsSync(file) && !force) {
    throw new TidemarkError('TARGET_NOT_EMPTY', `--out ${file} exists`, {
      hint: 'choose another name, or add --force to replace it',
    });
  }
  let changed: number;
  try {
    const result = await session.connection.run(
      `COPY (${sql.replace(/;\s*$/, '')}) TO ${quoteString(file)} (${options})`,
    );
    changed = result.rowsChanged;
  } catch (err) {
    throw session.failure(err, sql);
  }
  return changed;
}
