// Restore into MySQL/MariaDB: the tables are created from the captured schema in the given database (made
// if missing), so an operator can restore into a side database and copy rows back with INSERT … SELECT.
//
// The captured schema knows types, not lengths: CHAR/VARCHAR become TEXT (key columns VARCHAR sized to fit
// the index), BINARY/VARBINARY become BLOB (key columns VARBINARY), every column is nullable, and the
// primary key is the captured one. Values go in exactly: the session runs in UTC like capture's reads.

import mysql from 'mysql2/promise';
import { TidemarkError, type ColumnDef, type RowValue, type TableCodec } from '../../core/index.js';
import {
  asideName,
  tableWritten,
  type RestoreSummaryRecord,
  type RestoreTarget,
  type TableSink,
} from './target.js';

const quote = (name: string) => `\`${name.replace(/`/g, '``')}\``;
const literal = (text: string) => `'${text.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

/** The column type to create, from what capture recorded. */
export function columnDdl(c: ColumnDef, keyParts: number, isKey: boolean): string {
  const unsigned = c.unsigned ? ' unsigned' : '';
  const fsp = c.fsp ? `(${c.fsp})` : '';
  // utf8mb4 index keys hold 3072 bytes: 768 characters shared among the key's text columns.
  const keyChars = Math.max(16, Math.floor(768 / Math.max(1, keyParts)));
  switch (c.type) {
    case 'decimal':
      return `decimal(${c.precision ?? 10},${c.scale ?? 0})${unsigned}`;
    case 'bit':
      return `bit(${c.bits ?? 1})`;
    case 'time':
    case 'datetime':
    case 'timestamp':
      return `${c.type}${fsp}${c.type === 'timestamp' ? ' NULL DEFAULT NULL' : ''}`;
    case 'char':
    case 'varchar':
      return isKey ? `varchar(${keyChars})` : 'longtext';
    case 'binary':
    case 'varbinary':
      return isKey ? `varbinary(${keyChars * 4})` : 'longblob';
    case 'enum':
    case 'set':
      return `${c.type}(${(c.values ?? []).map(literal).join(',')})`;
    case 'tinyint':
    case 'smallint':
    case 'mediumint':
    case 'int':
    case 'bigint':
    case 'float':
    case 'double':
      return `${c.type}${unsigned}`;
    default:
      return c.type;
  }
}

export function createTableSql(name: string, codec: TableCodec): string {
  const key = codec.table.primaryKey;
  const textKeys = key.filter((k) => {
    const t = codec.table.columns.find((c) => c.name === k)?.type;
    return t === 'char' || t === 'varchar' || t === 'binary' || t === 'varbinary';
  }).length;
  const cols = codec.table.columns.map(
    (c) => `  ${quote(c.name)} ${columnDdl(c, textKeys, key.includes(c.name))}`,
  );
  if (key.length > 0) cols.push(`  PRIMARY KEY (${key.map(quote).join(', ')})`);
  return `CREATE TABLE ${quote(name)} (\n${cols.join(',\n')}\n) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`;
}

/** `chat.messages` → `messages`. */
function tableName(qualified: string): string {
  return qualified.slice(qualified.indexOf('.') + 1);
}

function sqlValue(v: RowValue): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

export class MysqlTarget implements RestoreTarget {
  readonly description: string;
  private conn: mysql.Connection | undefined;

  constructor(
    private readonly url: URL,
    private readonly database: string,
    private readonly startedMs: number,
  ) {
    this.description = `mysql://${url.host}/${database}`;
  }

  private async connect(): Promise<mysql.Connection> {
    if (this.conn) return this.conn;
    try {
      const conn = await mysql.createConnection({
        host: this.url.hostname,
        port: Number(this.url.port || 3306),
        user: decodeURIComponent(this.url.username),
        password: decodeURIComponent(this.url.password),
        supportBigNumbers: true,
        bigNumberStrings: true,
        dateStrings: true,
        multipleStatements: false,
      });
      await conn.query("SET SESSION time_zone = '+00:00'");
      await conn.query("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'");
      await conn.query('SET SESSION foreign_key_checks = 0');
      await conn.query(`CREATE DATABASE IF NOT EXISTS ${quote(this.database)} DEFAULT CHARSET utf8mb4`);
      await conn.query(`USE ${quote(this.database)}`);
      this.conn = conn;
      return conn;
    } catch (err) {
      throw new TidemarkError(
        'TARGET_UNAVAILABLE',
        `cannot use ${this.description}: ${(err as Error).message}`,
        {
          cause: err,
          hint: 'check the --to URI; the user needs CREATE, DROP and INSERT on the database',
        },
      );
    }
  }

  async check(tables: readonly string[], force: boolean): Promise<void> {
    const conn = await this.connect();
    const names = tables.map(tableName);
    const clash = names.find((n, i) => names.indexOf(n) !== i);
    if (clash !== undefined) {
      throw new TidemarkError(
        'BAD_ARGUMENT',
        `${tables.filter((t) => tableName(t) === clash).join(' and ')} would both be ${this.database}.${clash}`,
        { hint: 'restore tables of the same name from different databases into separate target databases' },
      );
    }
    if (force) return;
    const present: string[] = [];
    for (const t of tables) {
      const [rows] = await conn.query(
        'SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
        [this.database, tableName(t)],
      );
      if (Number((rows as { n: number }[])[0]?.n) > 0) present.push(`${this.database}.${tableName(t)}`);
    }
    if (present.length > 0) {
      throw new TidemarkError(
        'TARGET_NOT_EMPTY',
        `${this.description} already has the tables ${present.join(', ')}`,
        {
          hint: 'restore into another database, or pass --force to replace them (the old ones are kept aside)',
        },
      );
    }
  }

  async openTable(qualified: string, codec: TableCodec, force: boolean): Promise<TableSink> {
    const conn = await this.connect();
    // The side database takes the table's own name, so rows copy back with INSERT … SELECT.
    const table = codec.table.table;
    let keptAside: string | undefined;
    if (force) {
      const [found] = await conn.query(
        'SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
        [this.database, table],
      );
      if (Number((found as { n: number }[])[0]?.n) > 0) {
        keptAside = asideName(table, this.startedMs);
        await conn.query(`RENAME TABLE ${quote(table)} TO ${quote(keptAside)}`);
      }
    }
    await conn.query(createTableSql(table, codec));
    const columns = codec.table.columns;
    const placeholders = `(${columns.map((c) => (c.type === 'geometry' ? 'ST_GeomFromWKB(?)' : '?')).join(', ')})`;
    const head = `INSERT INTO ${quote(table)} (${columns.map((c) => quote(c.name)).join(', ')}) VALUES `;
    let rows = 0;
    return {
      write: async (batch) => {
        // Statements of ~500 rows stay well under max_allowed_packet for chat-sized rows.
        for (let i = 0; i < batch.length; i += 500) {
          const part = batch.slice(i, i + 500);
          const values: unknown[] = [];
          for (const { row } of part) for (const c of columns) values.push(sqlValue(row[c.name] ?? null));
          await conn.query(head + part.map(() => placeholders).join(', '), values);
        }
        rows += batch.length;
      },
      end: () => Promise.resolve(tableWritten(this.description, table, rows, keptAside)),
    };
  }

  async finish(summary: RestoreSummaryRecord): Promise<void> {
    void summary;
    return Promise.resolve();
  }

  async close(): Promise<void> {
    await this.conn?.end().catch(() => undefined);
    this.conn = undefined;
  }
}
