// Start-up checks against the source: binlog settings, grants and server id. Each failure says which
// setting is wrong and the statement that fixes it, so capture never runs on a source it would misread.

import mysql, { type Connection, type RowDataPacket } from 'mysql2/promise';
import { TidemarkError, tlsOptions, type SourceConfig } from '../core/index.js';
import { tableName, type TableId } from './table-selection.js';

/** A connection to the source as the config describes it; a refusal or an unreachable server says which. */
export async function connectSource(source: SourceConfig): Promise<Connection> {
  const { host, port, user, password } = source;
  const ssl = tlsOptions(source.tls, 'source');
  try {
    return await mysql.createConnection({
      host,
      port,
      user,
      password,
      ...(ssl ? { ssl } : {}),
      charset: 'utf8mb4',
      supportBigNumbers: true,
      bigNumberStrings: true,
    });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ER_ACCESS_DENIED_ERROR') {
      throw new TidemarkError(
        'SOURCE_MISCONFIGURED',
        `the source ${host}:${port} refused user ${user}: ${(err as Error).message}`,
        { cause: err, hint: 'check source.user and source.password (or passwordFile)' },
      );
    }
    throw new TidemarkError(
      'SOURCE_UNREACHABLE',
      `cannot connect to the source ${host}:${port}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/**
 * Where the source's binary log ends now: SHOW MASTER STATUS (MariaDB, MySQL up to 8.3), or SHOW BINARY LOG
 * STATUS on MySQL 8.4 and later, which removed the older statement.
 */
export async function binlogEnd(conn: Connection): Promise<{ file: string; offset: number }> {
  let rows: RowDataPacket[];
  try {
    [rows] = await conn.query<RowDataPacket[]>('SHOW MASTER STATUS');
  } catch (err) {
    if ((err as { code?: string }).code !== 'ER_PARSE_ERROR') throw err;
    [rows] = await conn.query<RowDataPacket[]>('SHOW BINARY LOG STATUS');
  }
  const row = rows[0];
  if (!row)
    throw new TidemarkError('SOURCE_MISCONFIGURED', 'SHOW MASTER STATUS returned nothing: is log_bin on?');
  return { file: String(row.File), offset: Number(row.Position) };
}

export interface SourceInfo {
  version: string;
  isMariaDb: boolean;
  /** The source's own server_id. */
  serverId: number;
  /** Binlog basename, e.g. `mariadb-bin` (from `mariadb-bin.000042`). */
  binlogBasename: string;
}

export interface SourceProblem {
  setting: string;
  problem: string;
  fix: string;
}

interface Variables {
  log_bin: number | string | null;
  binlog_format: string | null;
  binlog_row_image: string | null;
  binlog_row_metadata: string | null;
  server_id: number;
  version: string;
}

/** Pure check of the server variables; returns every problem at once. */
export function checkBinlogSettings(v: Variables): SourceProblem[] {
  const problems: SourceProblem[] = [];
  if (v.log_bin === null || v.log_bin === 0 || v.log_bin === '0' || v.log_bin === 'OFF') {
    problems.push({
      setting: 'log_bin',
      problem: 'binary logging is off',
      fix: 'add log_bin=<basename> (and server_id=<n>) under [mysqld] in the server config and restart; it cannot be turned on at run time',
    });
  }
  const expect = (setting: keyof Variables, wanted: string, extra = '') => {
    const actual = v[setting];
    if (actual === null || actual === undefined) return;
    if (String(actual).toUpperCase() !== wanted) {
      problems.push({
        setting,
        problem: `${setting} is ${String(actual)}, tidemark needs ${wanted}`,
        fix: `SET GLOBAL ${setting}=${wanted}; and ${setting}=${wanted} under [mysqld] in the server config so it survives a restart${extra}`,
      });
    }
  };
  const sessions = ' (sessions already open keep the old setting until they reconnect)';
  expect('binlog_format', 'ROW', sessions);
  expect('binlog_row_image', 'FULL', sessions);
  // Servers older than MySQL 8.0.1 / MariaDB 10.5 have no binlog_row_metadata (null here).
  expect(
    'binlog_row_metadata',
    'FULL',
    `${sessions}; without it, rows written before an ALTER TABLE decode into the wrong columns`,
  );
  return problems;
}

export interface Grants {
  replicationSlave: boolean;
  replicationClient: boolean;
}

/** Reads the replication privileges out of SHOW GRANTS lines (MySQL and MariaDB spellings). */
export function parseGrants(lines: readonly string[]): Grants {
  let replicationSlave = false;
  let replicationClient = false;
  for (const line of lines) {
    const m = /^GRANT (.+?) ON \*\.\* TO /i.exec(line);
    if (!m?.[1]) continue;
    const privileges = m[1].toUpperCase();
    if (privileges.includes('ALL PRIVILEGES')) return { replicationSlave: true, replicationClient: true };
    if (privileges.includes('REPLICATION SLAVE')) replicationSlave = true;
    if (/REPLICATION CLIENT|BINLOG MONITOR|SUPER/.test(privileges)) replicationClient = true;
  }
  return { replicationSlave, replicationClient };
}

async function query<T extends RowDataPacket>(
  conn: Connection,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const [rows] = await conn.query<T[]>(sql, params);
  return rows;
}

function failure(problems: SourceProblem[], host: string): TidemarkError {
  const lines = problems.map((p) => `  - ${p.problem}\n    fix: ${p.fix}`).join('\n');
  return new TidemarkError(
    'SOURCE_MISCONFIGURED',
    `the source ${host} cannot be captured as configured:\n${lines}`,
  );
}

/**
 * Runs every start-up check and throws one error listing all problems found.
 * `user` is the capture user as written in the config, for the GRANT statements it suggests.
 */
export async function checkSource(
  conn: Connection,
  options: { host: string; user: string; serverId: number; tables: readonly TableId[] },
): Promise<SourceInfo> {
  const [vars] = await query<RowDataPacket & Variables>(
    conn,
    `SELECT @@global.log_bin AS log_bin, @@global.binlog_format AS binlog_format,
            @@global.binlog_row_image AS binlog_row_image, @@global.server_id AS server_id, @@version AS version`,
  );
  if (!vars) throw new TidemarkError('INTERNAL', 'the source returned no server variables');
  const [metadata] = await query<RowDataPacket & { Value: string }>(
    conn,
    "SHOW GLOBAL VARIABLES LIKE 'binlog_row_metadata'",
  );
  const variables: Variables = { ...vars, binlog_row_metadata: metadata?.Value ?? null };
  const problems = checkBinlogSettings(variables);

  const grants = parseGrants(
    (await query<RowDataPacket>(conn, 'SHOW GRANTS')).map((r) => String(Object.values(r)[0])),
  );
  const account = `'${options.user}'@'<capture host>'`;
  if (!grants.replicationSlave || !grants.replicationClient) {
    const missing = [
      !grants.replicationSlave && 'REPLICATION SLAVE',
      !grants.replicationClient && 'REPLICATION CLIENT',
    ]
      .filter(Boolean)
      .join(', ');
    problems.push({
      setting: 'grants',
      problem: `the capture user lacks ${missing}`,
      fix: `GRANT ${missing} ON *.* TO ${account};`,
    });
  }
  for (const table of options.tables) {
    try {
      await conn.query(`SELECT 1 FROM \`${table.db}\`.\`${table.table}\` LIMIT 0`);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ER_TABLEACCESS_DENIED_ERROR' || code === 'ER_DBACCESS_DENIED_ERROR') {
        problems.push({
          setting: 'grants',
          problem: `the capture user cannot SELECT from ${tableName(table)}`,
          fix: `GRANT SELECT ON \`${table.db}\`.\`${table.table}\` TO ${account};`,
        });
      } else if (code === 'ER_NO_SUCH_TABLE' || code === 'ER_BAD_DB_ERROR') {
        problems.push({
          setting: 'source.tables.include',
          problem: `${tableName(table)} is named in source.tables.include but does not exist`,
          fix: 'create the table, or correct the name in source.tables.include',
        });
      } else {
        throw err;
      }
    }
  }

  if (options.serverId === Number(vars.server_id)) {
    problems.push({
      setting: 'source.serverId',
      problem: `source.serverId ${options.serverId} is the source's own server_id`,
      fix: 'give this capture instance a server id no other server or replica of this source uses (source.serverId)',
    });
  }

  if (problems.length > 0) throw failure(problems, options.host);

  const [lastLog] = await query<RowDataPacket & { Log_name: string }>(conn, 'SHOW BINARY LOGS').then((rows) =>
    rows.slice(-1),
  );
  const basename = lastLog?.Log_name.replace(/\.\d+$/, '') ?? 'binlog';
  return {
    version: String(vars.version),
    isMariaDb: /mariadb/i.test(String(vars.version)),
    serverId: Number(vars.server_id),
    binlogBasename: basename,
  };
}
