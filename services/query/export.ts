// `tidemark export`: the change events of some tables, in a time window, as Hive-partitioned files
// (`<out>/<db>.<table>/dt=YYYY-MM-DD/data_0.parquet`) that Athena, Trino, Spark or DuckDB read directly.
// DuckDB writes them (COPY … PARTITION_BY); an s3:// destination gets them uploaded with SHA-256 checks.

import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { openObjectStore, sha256Hex, TidemarkError, type ObjectStore } from '../core/index.js';
import { openArchive } from '../replay/archive-reader.js';
import { resolveTables } from '../replay/restore.js';
import { quoteIdent, quoteString } from './change-scan.js';
import { QuerySession, type QueryContext } from './session.js';

export type ExportFormat = 'parquet' | 'csv' | 'jsonl';

export interface ExportRequest {
  tables: readonly string[];
  from: string | undefined;
  to: string | undefined;
  format: ExportFormat;
  /** A local directory, or s3://bucket/prefix. */
  out: string;
  force: boolean;
}

export interface ExportedTable {
  table: string;
  rows: number;
  files: number;
  bytes: number;
  location: string;
}

export interface ExportSummary {
  tables: ExportedTable[];
  seconds: number;
}

const COPY_OPTIONS: Record<ExportFormat, string> = {
  parquet: 'FORMAT parquet, COMPRESSION zstd',
  csv: 'FORMAT csv, HEADER true',
  jsonl: 'FORMAT json',
};

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

async function nonEmpty(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of store.list(prefix)) keys.push(info.key);
  return keys;
}

export async function runExport(ctx: QueryContext, req: ExportRequest): Promise<ExportSummary> {
  const started = Date.now();
  const archive = openArchive(ctx.config);
  const tables = await resolveTables(archive, undefined, req.tables);
  const s3 = req.out.startsWith('s3://');
  const store = s3 ? openObjectStore(req.out, ctx.config.tier?.cold?.s3) : undefined;
  const exported: ExportedTable[] = [];
  // Refuse before writing anything when any destination is taken.
  for (const table of tables) {
    const taken = store
      ? (await nonEmpty(store, `${table}/`)).length > 0
      : (() => {
          try {
            return readdirSync(join(req.out, table)).length > 0;
          } catch {
            return false;
          }
        })();
    if (taken && !req.force) {
      throw new TidemarkError('TARGET_NOT_EMPTY', `${req.out}/${table} already holds an export`, {
        hint: 'choose another --out, or add --force to replace it',
      });
    }
  }
  for (const table of tables) {
    const sql = `SELECT * FROM changes.${quoteIdent(table)}`;
    const session = await QuerySession.open(ctx, { sql, from: req.from, to: req.to }, true);
    try {
      const local = store ? join(session.scratchDir, 'export', table) : join(req.out, table);
      rmSync(local, { recursive: true, force: true });
      mkdirSync(local, { recursive: true });
      let rows: number;
      try {
        const result = await session.connection.run(
          `COPY (SELECT *, strftime(_ts, '%Y-%m-%d') AS dt FROM changes.${quoteIdent(table)}) ` +
            `TO ${quoteString(local)} (${COPY_OPTIONS[req.format]}, PARTITION_BY (dt), OVERWRITE_OR_IGNORE true, ` +
            `FILENAME_PATTERN 'data_{i}')`,
        );
        rows = result.rowsChanged;
      } catch (err) {
        throw session.failure(err, sql);
      }
      const files = filesUnder(local);
      const bytes = files.reduce((n, f) => n + statSync(f).size, 0);
      let location = local;
      if (store) {
        for (const key of await nonEmpty(store, `${table}/`)) await store.delete([key]);
        for (const f of files) {
          const body = readFileSync(f);
          await store.put(`${table}/${relative(local, f).split(sep).join('/')}`, body, {
            sha256: sha256Hex(body),
          });
        }
        location = `${req.out.replace(/\/$/, '')}/${table}`;
      }
      exported.push({ table, rows, files: files.length, bytes, location });
      ctx.logger.info({ table, rows, files: files.length, location }, 'export: table written');
    } finally {
      await session.close();
    }
  }
  return { tables: exported, seconds: (Date.now() - started) / 1000 };
}
