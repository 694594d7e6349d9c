// Table shapes from INFORMATION_SCHEMA, for the snapshot and for tables first seen at start-up.

import type { Connection, RowDataPacket } from 'mysql2/promise';
import { parseColumnType, type TableSchema } from '../core/index.js';
import type { TableId } from './table-selection.js';

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
  return {
    db: t.db,
    table: t.table,
    columns: columns.map((c) => parseColumnType(c.COLUMN_NAME, c.COLUMN_TYPE)),
    primaryKey: keys.map((k) => String(k.COLUMN_NAME)),
  };
}
