// Where a restore writes: a directory of files, a MongoDB database or a MySQL database. Every target refuses
// to write over data unless forced, and receives each table's rows in batches, newest schema version only.

import { compactUtc, type Row, type TableCodec } from '../../core/index.js';
import type { Slot } from '../keyed-state.js';

export interface RestoredRow {
  key: string;
  row: Row;
  slot: Slot;
}

export interface TableSink {
  write(rows: readonly RestoredRow[]): Promise<void>;
  /** Ends the table; returns what was written, and where what it replaced was kept (--force). */
  end(): Promise<{ rows: number; bytes: number; location: string; keptAside?: string }>;
}

export interface RestoreTarget {
  /** Where, for messages: `dir:/path (jsonl)`, `mongodb://host/db`, `mysql://host/db`. */
  readonly description: string;
  /** Refuses, naming what is there, when a table would be written over and force is not set. */
  check(tables: readonly string[], force: boolean): Promise<void>;
  /** Starts a table (dropping what force allows to replace). */
  openTable(table: string, codec: TableCodec, force: boolean): Promise<TableSink>;
  /** Records what the restore was (the point, the tables), where the target has a place for it. */
  finish(summary: RestoreSummaryRecord): Promise<void>;
  close(): Promise<void>;
}

export interface RestoreSummaryRecord {
  at: string;
  position: string | null;
  positionTime: string | null;
  tables: { table: string; rows: number; schemaVersion: string; location: string }[];
  finishedAt: string;
}

/**
 * Where `--force` keeps what a restore replaces, so the current state is saved before it is touched:
 * `messages` → `messages_before_20260301T100312Z` (the restore's start time).
 */
export function asideName(name: string, startedMs: number): string {
  return `${name}_before_${compactUtc(startedMs)}`;
}

/** What a database target's table sink reports at its end: `<target>.<table>`, and where the old one went. */
export function tableWritten(
  description: string,
  table: string,
  rows: number,
  keptAside: string | undefined,
): { rows: number; bytes: number; location: string; keptAside?: string } {
  return {
    rows,
    bytes: 0,
    location: `${description}.${table}`,
    ...(keptAside ? { keptAside: `${description}.${keptAside}` } : {}),
  };
}

/** Rows of an older schema version, given in the newest one: same columns by name, added ones null. */
export function projectRow(row: Row, codec: TableCodec): Row {
  const out: Row = {};
  for (const c of codec.table.columns) out[c.name] = row[c.name] ?? null;
  return out;
}
