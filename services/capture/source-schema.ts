// Table shapes from INFORMATION_SCHEMA, for the snapshot and for tables first seen at start-up.

import type { Connection, RowDataPacket } from 'mysql2/promise';
import { parseColumnType, type ColumnDef, type TableSchema } from '../core/index.js';
import type { TableId } from './table-selection.js';

/** JSON columns by `db.table`: MariaDB's JSON is a LONGTEXT whose only sign is its json_valid check. */
export type JsonColumns = ReadonlyMap<string, ReadonlySet<string>>;

const JSON_CHECK = /^json_valid\(`((?:[^`]|``)+)`\)$/i;

/**
 * The LONGTEXT columns MariaDB declared as JSON (a `json_valid(col)` check, which is what `JSON` becomes),
 * of one table or of every table the user sees. MySQL has a JSON type of its own and no table names in
 * CHECK_CONSTRAINTS: there the answer is empty.
 */
export async function readJsonColumns(conn: Connection, table?: TableId): Promise<JsonColumns> {
  const found = new Map<string, Set<string>>();
  let rows: RowDataPacket[];
  try {
    [rows] = await conn.query<RowDataPacket[]>(
      `SELECT CONSTRAINT_SCHEMA AS db, TABLE_NAME AS tbl, CHECK_CLAUSE AS clause
         FROM INFORMATION_SCHEMA.CHECK_CONSTRAINTS
        WHERE CHECK_CLAUSE LIKE 'json_valid(%'${table ? ' AND CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?' : ''}`,
      table ? [table.db, table.table] : [],
    );
  } catch (err) {
    // MySQL: CHECK_CONSTRAINTS has no TABLE_NAME (and JSON is a type of its own there).
    if ((err as { errno?: number }).errno === 1054) return found;
    throw err;
  }
  for (const r of rows) {
    const column = JSON_CHECK.exec(String(r.clause))?.[1]?.replaceAll('``', '`');
    if (column === undefined) continue;
    const name = `${String(r.db)}.${String(r.tbl)}`;
    const columns = found.get(name) ?? new Set<string>();
    columns.add(column);
    found.set(name, columns);
  }
  return found;
}

/** The columns with MariaDB's JSON LONGTEXTs typed as JSON. */
export function withJsonColumns(
  columns: readonly ColumnDef[],
  json: ReadonlySet<string> | undefined,
): ColumnDef[] {
  if (json === undefined) return [...columns];
  return columns.map((c) => (c.type === 'longtext' && json.has(c.name) ? { name: c.name, type: 'json' } : c));
}

interface ColumnRow extends RowDataPacket {
  TABLE_SCHEMA: string;
  TABLE_NAME: string;
  COLUMN_NAME: string;
  COLUMN_TYPE: string;
  COLUMN_KEY: string;
}

/** Every base table the capture user can see, as db/table pairs. */
export async function listTables(conn: Connection): Promise<TableId[]> {
  const [rows] = await conn.query<RowDataPacket[]>(
    `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS tbl FROM INFORMATION_SCHEMA.TABLES
      WHERE TABLE_TYPE = 'BASE TABLE'
        AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
      ORDER BY TABLE_SCHEMA, TABLE_NAME`,
  );
  return rows.map((r) => ({ db: String(r.db), table: String(r.tbl) }));
}

export async function readTableSchema(conn: Connection, t: TableId): Promise<TableSchema> {
  const [columns] = await conn.query<ColumnRow[]>(
    `SELECT COLUMN_NAME, COLUMN_TYPE, COLUMN_KEY FROM INFORMATION_SCHEMA.COLUMNS
      WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    [t.db, t.table],
  );
  const [keys] = await conn.query<RowDataPacket[]>(
    `SELECT COLUMN_NAME FROM INFORMATION_SCHEMA.KEY_COLUMN_USAGE
      WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION`,
    [t.db, t.table],
  );
  const json = (await readJsonColumns(conn, t)).get(`${t.db}.${t.table}`);
  return {
    db: t.db,
    table: t.table,
    columns: withJsonColumns(
      columns.map((c) => parseColumnType(c.COLUMN_NAME, c.COLUMN_TYPE)),
      json,
    ),
    primaryKey: keys.map((k) => String(k.COLUMN_NAME)),
  };
}
