// Checks what capture wrote against the source: every change exactly once by position, and the state the
// deduplicated events replay to equal to the source table.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2';
import { buildShape } from '../../services/capture/row-mapper.js';
import { snapshotConnectionOptions } from '../../services/capture/snapshot.js';
import { readTableSchema } from '../../services/capture/source-schema.js';
import { TableSelection } from '../../services/capture/table-selection.js';
import {
  encodeKey,
  formatPosition,
  readAvroFile,
  type ChangeEvent,
  type Row,
  type SourceConfig,
} from '../../services/core/index.js';

const json = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x));

export interface Ledger {
  /** Events deduplicated by position, in position order. */
  unique: ChangeEvent[];
  /** How many events were copies of an earlier one (same position). */
  duplicates: number;
  /** Positions that carried two different events: must never happen. */
  conflicts: string[];
}

export function dedupeByPosition(events: readonly ChangeEvent[]): Ledger {
  const byPosition = new Map<string, ChangeEvent>();
  const conflicts: string[] = [];
  let duplicates = 0;
  for (const e of events) {
    const key = `${e.source.db}.${e.source.table}@${formatPosition(e.pos)}`;
    const seen = byPosition.get(key);
    if (!seen) {
      byPosition.set(key, e);
    } else {
      duplicates++;
      if (json({ ...seen, source: null }) !== json({ ...e, source: null })) conflicts.push(key);
    }
  }
  const unique = [...byPosition.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e);
  return { unique, duplicates, conflicts };
}

/** The table state the events describe: newest position wins per key; a delete removes the row; with keyOf,
 * an update that changed the key removes the row under its old key. */
export function replayState(unique: readonly ChangeEvent[], keyOf?: (row: Row) => string): Map<string, Row> {
  const state = new Map<string, Row>();
  for (const e of unique) {
    // An update of the primary key moves the row: its old key is gone.
    if (e.op === 'u' && e.before && keyOf) state.delete(keyOf(e.before));
    if (e.op === 'd') state.delete(e.key);
    else if (e.after) state.set(e.key, e.after);
  }
  return state;
}

export function sameState(
  a: Map<string, Row>,
  b: Map<string, Row>,
): { missing: string[]; extra: string[]; different: string[] } {
  const missing = [...b.keys()].filter((k) => !a.has(k));
  const extra = [...a.keys()].filter((k) => !b.has(k));
  const different = [...a.keys()].filter((k) => b.has(k) && json(a.get(k)) !== json(b.get(k)));
  return { missing, extra, different };
}

/** The source table now, in the exact form capture publishes (no masks), keyed like change events. */
export async function sourceState(
  source: SourceConfig,
  db: string,
  table: string,
): Promise<Map<string, Row>> {
  const conn = mysql.createConnection(snapshotConnectionOptions(source)).promise();
  try {
    await conn.query("SET SESSION time_zone = '+00:00'");
    return await readState(conn, db, table);
  } finally {
    await conn.end();
  }
}

/** Several tables at one binlog position: a consistent snapshot, and the position it is consistent with. */
export async function sourceSnapshot(
  source: SourceConfig,
  db: string,
  tables: readonly string[],
): Promise<{ binlogFile: string; binlogOffset: number; states: Map<string, Map<string, Row>> }> {
  const conn = mysql.createConnection(snapshotConnectionOptions(source)).promise();
  try {
    await conn.query("SET SESSION time_zone = '+00:00'");
    await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
    const [status] = await conn.query("SHOW STATUS LIKE 'binlog_snapshot_%'");
    const vars = new Map(
      (status as { Variable_name: string; Value: string }[]).map((r) => [r.Variable_name, r.Value]),
    );
    const states = new Map<string, Map<string, Row>>();
    for (const table of tables) states.set(table, await readState(conn, db, table));
    await conn.query('COMMIT');
    return {
      binlogFile: vars.get('Binlog_snapshot_file') ?? '',
      binlogOffset: Number(vars.get('Binlog_snapshot_position')),
      states,
    };
  } finally {
    await conn.end();
  }
}

async function readState(
  conn: ReturnType<ReturnType<typeof mysql.createConnection>['promise']>,
  db: string,
  table: string,
): Promise<Map<string, Row>> {
  const schema = await readTableSchema(conn, { db, table });
  const shape = buildShape(
    schema,
    { exclude: [], mask: {} },
    new TableSelection({ include: [`${db}.${table}`], exclude: [], columns: {} }),
  );
  const [rows] = await conn.query(`SELECT * FROM \`${db}\`.\`${table}\``);
  const state = new Map<string, Row>();
  for (const raw of rows as Record<string, unknown>[]) {
    const row = shape.mapRow(raw);
    state.set(shape.codec.keyOf(row), row);
  }
  return state;
}

/** A table restored as an Avro file into a directory, keyed like the source state. */
export async function restoredState(
  dir: string,
  file: string,
  keys: readonly string[],
): Promise<Map<string, Row>> {
  const { records } = await readAvroFile(readFileSync(join(dir, file)), file);
  const state = new Map<string, Row>();
  for (const r of records as Row[]) state.set(encodeKey(keys.map((k) => r[k] ?? null)), { ...r });
  return state;
}
