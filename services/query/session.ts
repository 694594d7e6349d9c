// A query over the archive: DuckDB in this process, the change tables of the archive fed to it by
// tidemark's own Avro reader, and tables as of a point rebuilt by the replay service.
//
//   changes."<db>.<table>"  every change event: _op, _ts, _pos, _tx, _key and the row's columns (the
//                           after-image, the before-image for deletes), only from the files that can hold
//                           the answer (--from/--to, and the query's own predicates on _ts, _pos and the
//                           columns the archive keeps min/max of)
//   "<db>.<table>"          the table as it was at --at (default: the newest point the archive reaches)

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DuckDBAppender, DuckDBConnection } from '@duckdb/node-api';
import { DuckDBDataChunk, DuckDBInstance } from '@duckdb/node-api';
import {
  listArchivedTables,
  listManifestEntries,
  readAvroBlocks,
  readDataFile,
  TableCodec,
  TidemarkError,
  type ColumnDef,
  type Config,
  type Logger,
  type ManifestEntry,
  type Row,
} from '../core/index.js';
import { archiveKey, openArchive, type Archive } from '../replay/archive-reader.js';
import { planRestore, rebuild } from '../replay/rebuild.js';
import { formatBytes, type Progress } from '../replay/restore.js';
import { parseTargetPoint, type TargetPoint } from '../replay/target-point.js';
import { projectRow } from '../replay/targets/target.js';
import {
  changeColumns,
  changeViewSql,
  columnTypes,
  physicalSetters,
  physicalTypes,
  quoteIdent,
  quoteString,
  registerChangeScan,
  viewExpression,
  type QueryColumn,
  type ScanFile,
  type ScanTable,
} from './change-scan.js';
import { DecodePool, LocalDecoder } from './decode-pool.js';
import { selectFiles, type FileDecision, type TimeWindow } from './file-selection.js';
import { cteNames, tableReferences, type Predicate } from './sql-shape.js';

export interface QueryContext {
  config: Config;
  logger: Logger;
  progress?: Progress;
  nowMs?: number;
}

export interface QueryRequest {
  sql: string;
  /** Event-time window of the change tables (times as --at takes them). */
  from?: string | undefined;
  to?: string | undefined;
  /** The point the state tables show (default: latest). */
  at?: string | undefined;
  maxKeys?: number;
  /** Decode in worker threads when the query reads at least this many events (default 300,000). */
  workersFrom?: number;
}

export interface ChangeTablePlan {
  table: string;
  /** Days of manifests listed (undefined: all of them). */
  listedDays: { fromMs: number; toMs: number } | undefined;
  decisions: FileDecision[];
  references: Predicate[][];
}

export interface StateTablePlan {
  table: string;
  at: string;
}

export interface QueryPlan {
  changes: ChangeTablePlan[];
  state: StateTablePlan[];
  window: TimeWindow;
}

const STAGE_CONCURRENCY = 4;
/** Events a query must decode before starting decode workers pays (a worker takes a fraction of a second to start). */
const WORKERS_FROM_EVENTS = 300_000;

/** --from/--to as a window in ms; positions are for restores, not for event-time windows. */
export function timeWindow(from: string | undefined, to: string | undefined, nowMs?: number): TimeWindow {
  const point = (text: string | undefined, flag: string): number | undefined => {
    if (text === undefined) return undefined;
    const p: TargetPoint = parseTargetPoint(text, nowMs);
    if (p.kind === 'latest') return undefined;
    if (p.kind !== 'time') {
      throw new TidemarkError('BAD_ARGUMENT', `${flag} "${text}" is a position; ${flag} takes a time`, {
        hint: 'e.g. 2026-03-01, 2026-03-01T10:00:00Z or "7 days ago"; filter positions in SQL with _pos',
      });
    }
    return p.ms;
  };
  const window = { fromMs: point(from, '--from'), toMs: point(to, '--to') };
  if (window.fromMs !== undefined && window.toMs !== undefined && window.fromMs > window.toMs) {
    throw new TidemarkError('BAD_ARGUMENT', `--from (${from}) is after --to (${to})`);
  }
  return window;
}

/** DuckDB's message, which shows where in the query it went wrong. */
export function sqlError(err: unknown, sql: string): TidemarkError {
  const message = (err as Error).message ?? String(err);
  return new TidemarkError('BAD_ARGUMENT', `the query does not run: ${message}`, {
    hint:
      sql.length > 200
        ? 'tables: changes."<db>.<table>" for change events, "<db>.<table>" for a table as of --at'
        : `query: ${sql}\ntables: changes."<db>.<table>" for change events, "<db>.<table>" for a table as of --at`,
  });
}

/** The _ts bounds one reference's predicates put on its events (undefined where open). */
function referenceTimeBounds(predicates: readonly Predicate[], window: TimeWindow): TimeWindow {
  let { fromMs, toMs } = window;
  for (const p of predicates) {
    if (p.column !== '_ts' || p.value.kind === 'number') continue;
    const ms = Date.parse(
      /[zZ]|[+-]\d\d:?\d\d$/.test(p.value.text) ? p.value.text : `${p.value.text.replace(' ', 'T')}Z`,
    );
    if (Number.isNaN(ms)) continue;
    if (p.op === '>' || p.op === '>=' || p.op === '=') fromMs = Math.max(fromMs ?? -Infinity, ms - 1);
    if (p.op === '<' || p.op === '<=' || p.op === '=') toMs = Math.min(toMs ?? Infinity, ms + 1);
  }
  return { fromMs, toMs };
}

export class QuerySession {
  /** The first failure of a scan (a damaged file, a wrong key): reported as itself, not as a SQL error. */
  private scanFailure: TidemarkError | undefined;
  /** Decode workers (or the in-process decoder), while the session has change tables. */
  private pool: DecodePool | LocalDecoder | undefined;

  private constructor(
    readonly connection: DuckDBConnection,
    private readonly instance: DuckDBInstance,
    readonly plan: QueryPlan,
    /** This session's own scratch directory, removed on close. */
    readonly scratchDir: string,
  ) {}

  /** Reads the query, plans which files and states it needs; with `load`, stages them and defines the tables. */
  static async open(ctx: QueryContext, req: QueryRequest, load: boolean): Promise<QuerySession> {
    const archive = openArchive(ctx.config);
    const window = timeWindow(req.from, req.to, ctx.nowMs);
    const workDir = mkdtempSync(join(ctx.config.replay.tmpDir ?? tmpdir(), 'tidemark-query-'));
    let instance: DuckDBInstance | undefined;
    let pool: DecodePool | LocalDecoder | undefined;
    try {
      mkdirSync(join(workDir, 'spill'));
      instance = await DuckDBInstance.create(':memory:', {
        temp_directory: join(workDir, 'spill'),
        autoinstall_known_extensions: 'false',
        autoload_known_extensions: 'false',
      });
      const connection = await instance.connect();
      const refs = await readReferences(connection, req.sql);
      const ctes = cteNames(refs.tree);
      const changeRefs = new Map<string, Predicate[][]>();
      const stateTables = new Set<string>();
      for (const r of refs.references) {
        const schema = r.schema.toLowerCase();
        // One list request per table named; the whole archive is listed only to say what exists.
        const exists = r.name.includes('.') && (await isArchived(archive, r.name));
        if (schema === 'changes') {
          if (!exists) throw await unknownTable(`changes.${quoteIdent(r.name)}`, archive);
          changeRefs.set(r.name, [...(changeRefs.get(r.name) ?? []), r.predicates]);
        } else if ((schema === '' || schema === 'main') && !ctes.has(r.name.toLowerCase())) {
          if (exists) stateTables.add(r.name);
          else if (r.name.includes('.')) throw await unknownTable(quoteIdent(r.name), archive);
        }
      }
      const plan: QueryPlan = { changes: [], state: [], window };
      const planned = [];
      for (const [table, references] of changeRefs) {
        const p = await planChangeTable(archive, table, references, window);
        plan.changes.push(p.plan);
        planned.push(p);
      }
      const scans = new Map<string, ScanTable>();
      if (load && planned.length > 0) {
        // Workers start while the files are fetched; a small scan decodes here.
        const events = plan.changes.reduce(
          (n, t) => n + t.decisions.reduce((m, d) => m + (d.read ? Number(d.entry.rows) : 0), 0),
          0,
        );
        pool =
          events >= WORKERS_FROM_EVENTS ? new DecodePool(archive.keyring) : new LocalDecoder(archive.keyring);
        for (const p of planned) scans.set(p.plan.table, await stageTable(ctx, archive, p, window, workDir));
      }
      const at = req.at ?? 'latest';
      for (const table of stateTables) plan.state.push({ table, at });
      const session = new QuerySession(connection, instance, plan, workDir);
      session.pool = pool;
      if (load) {
        let rows = 0;
        const total = [...scans.values()].reduce(
          (n, s) => n + s.files.reduce((m, f) => m + Number(f.entry.rows), 0),
          0,
        );
        ctx.progress?.start(total);
        ctx.progress?.phase('querying');
        if (pool) {
          registerChangeScan(
            connection,
            scans,
            pool,
            (n) => {
              rows += n;
              ctx.progress?.update(rows, 0);
            },
            (err) => (session.scanFailure ??= err),
          );
          await connection.run('CREATE SCHEMA IF NOT EXISTS changes');
        }
        for (const scan of scans.values()) await connection.run(changeViewSql(scan));
        for (const table of stateTables) await session.loadState(ctx, archive, table, at, req.maxKeys);
      }
      return session;
    } catch (err) {
      instance?.closeSync();
      await pool?.close();
      rmSync(workDir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Rebuilds one table as of the point with the replay service and defines it as `"<db>.<table>"`. */
  private async loadState(
    ctx: QueryContext,
    archive: Archive,
    table: string,
    at: string,
    maxKeys: number | undefined,
  ): Promise<void> {
    const point = parseTargetPoint(at, ctx.nowMs);
    const plan = await planRestore(archive, undefined, {
      at: point,
      tables: [table],
      archiveOnly: true,
      allowGaps: false,
      useSnapshots: true,
    });
    if (plan.clampedFrom) {
      ctx.logger.info(
        { table, asked: at },
        'query: the archive is complete only up to the newest point every partition reaches; the table is shown as of that point',
      );
    }
    const result = await rebuild(archive, undefined, plan, {
      maxKeys: maxKeys ?? ctx.config.replay.maxKeysInMemory,
      ...(ctx.config.replay.tmpDir ? { tmpDir: ctx.config.replay.tmpDir } : {}),
      logger: ctx.logger,
    });
    try {
      for (const t of result.tables) {
        await loadRows(this.connection, t.table, t.codec, t.state.rows());
      }
    } finally {
      for (const t of result.tables) t.state.discard();
    }
  }

  /** What a failed statement tells the user: a scan's own failure, or DuckDB's message. */
  failure(err: unknown, sql: string): TidemarkError {
    return this.scanFailure ?? sqlError(err, sql);
  }

  async close(): Promise<void> {
    this.connection.closeSync();
    this.instance.closeSync();
    await this.pool?.close();
    rmSync(this.scratchDir, { recursive: true, force: true });
  }
}

/** Whether the archive has manifests of a table (stops at the first key). */
async function isArchived(archive: Archive, table: string): Promise<boolean> {
  for await (const _ of archive.store.list(`${archiveKey(archive, 'manifests', table)}/`)) return true;
  return false;
}

async function unknownTable(name: string, archive: Archive): Promise<TidemarkError> {
  const known = await listArchivedTables(archive.store, archive.prefix);
  return new TidemarkError(
    'BAD_ARGUMENT',
    `the query names ${name}, which is not in the archive at ${archive.store.url}`,
    {
      hint:
        known.length === 0
          ? 'the archive holds no tables yet'
          : `tables: ${known.map((t) => `changes.${quoteIdent(t)} / ${quoteIdent(t)}`).join(', ')}`,
    },
  );
}

async function readReferences(
  connection: DuckDBConnection,
  sql: string,
): Promise<{ tree: unknown; references: ReturnType<typeof tableReferences> }> {
  let parsed: { error?: boolean; error_message?: string; statements?: unknown };
  try {
    // The function takes a constant only.
    const reader = await connection.runAndReadAll(`SELECT json_serialize_sql(${quoteString(sql)})`);
    parsed = JSON.parse(String(reader.getRows()[0]?.[0])) as typeof parsed;
  } catch (err) {
    throw sqlError(err, sql);
  }
  if (parsed.error) {
    // DuckDB's parser says where; extractStatements raises its message with the position.
    try {
      await connection.extractStatements(sql);
    } catch (err) {
      throw sqlError(err, sql);
    }
    throw new TidemarkError(
      'BAD_ARGUMENT',
      `tidemark query runs SELECT statements: ${parsed.error_message}`,
      {
        hint: 'WITH, joins, subqueries, GROUP BY, window functions are all fine; to see columns: SELECT * FROM changes."<db>.<table>" LIMIT 0',
      },
    );
  }
  return { tree: parsed.statements, references: tableReferences(parsed.statements) };
}

interface PlannedTable {
  plan: ChangeTablePlan;
  /** Every manifest entry listed, in partition and offset order. */
  listed: ManifestEntry[];
  /** The table's columns in the newest schema version listed. */
  columns: readonly ColumnDef[];
}

async function planChangeTable(
  archive: Archive,
  table: string,
  references: Predicate[][],
  window: TimeWindow,
): Promise<PlannedTable> {
  const [db = '', name = ''] = table.split(/\.(.*)/s);
  // Manifests are listed per day: only the days some reference can need.
  const bounds = references.map((r) => referenceTimeBounds(r, window));
  const fromMs = bounds.some((b) => b.fromMs === undefined)
    ? undefined
    : Math.min(...bounds.map((b) => b.fromMs as number));
  const toMs = bounds.some((b) => b.toMs === undefined)
    ? undefined
    : Math.max(...bounds.map((b) => b.toMs as number));
  const listedDays = fromMs !== undefined && toMs !== undefined ? { fromMs, toMs } : undefined;
  const listed: ManifestEntry[] = [];
  const options =
    listedDays !== undefined
      ? listedDays
      : { ...(fromMs !== undefined ? { fromMs } : {}), ...(toMs !== undefined ? { toMs } : {}) };
  for await (const e of listManifestEntries(archive.store, archive.prefix, db, name, options)) listed.push(e);
  listed.sort((a, b) =>
    a.partition !== b.partition ? a.partition - b.partition : a.first_offset < b.first_offset ? -1 : 1,
  );
  if (listed.length === 0 && (window.fromMs !== undefined || window.toMs !== undefined)) {
    throw await outOfWindow(archive, db, name, table, window);
  }
  const newest = newestEntry(listed);
  const columns = newest ? await columnsOf(archive, newest) : [];
  const decisions = selectFiles(listed, window, references, columns);
  return { plan: { table, listedDays, decisions, references }, listed, columns };
}

function newestEntry(entries: readonly ManifestEntry[]): ManifestEntry | undefined {
  let newest: ManifestEntry | undefined;
  for (const e of entries) if (!newest || e.last_pos > newest.last_pos) newest = e;
  return newest;
}

async function columnsOf(archive: Archive, entry: ManifestEntry) {
  const body = await readDataFile(archive.store, entry, archive.keyring);
  const avro = readAvroBlocks(body, `${archive.store.url}/${entry.object_key}`);
  return TableCodec.fromSchema(avro.schema as Record<string, unknown>).table.columns;
}

async function outOfWindow(
  archive: Archive,
  db: string,
  name: string,
  table: string,
  window: TimeWindow,
): Promise<TidemarkError> {
  let min = Infinity;
  let max = -Infinity;
  for await (const e of listManifestEntries(archive.store, archive.prefix, db, name)) {
    min = Math.min(min, Number(e.min_ts_ms));
    max = Math.max(max, Number(e.max_ts_ms));
  }
  const asked = `${window.fromMs === undefined ? 'the beginning' : new Date(window.fromMs).toISOString()} .. ${window.toMs === undefined ? 'now' : new Date(window.toMs).toISOString()}`;
  return new TidemarkError('OUT_OF_WINDOW', `${table} has no changes in ${asked}`, {
    hint:
      min === Infinity
        ? `${archiveKey(archive, 'manifests', table)} is empty`
        : `the archive holds ${table} from ${new Date(min).toISOString()} to ${new Date(max).toISOString()}`,
  });
}

/** Fetches (checks, decrypts) the files to read onto local disk, where the scan reads them. */
async function stageTable(
  ctx: QueryContext,
  archive: Archive,
  planned: PlannedTable,
  window: TimeWindow,
  workDir: string,
): Promise<ScanTable> {
  const { plan, listed } = planned;
  const columns = changeColumns(planned.columns);
  const dir = join(workDir, plan.table);
  mkdirSync(dir);
  // The highest position before each file in its partition, over every listed file (read or not).
  const after = new Map<ManifestEntry, string | undefined>();
  let partition = -1;
  let high: string | undefined;
  for (const e of listed) {
    if (e.partition !== partition) {
      partition = e.partition;
      high = undefined;
    }
    after.set(e, high);
    if (high === undefined || e.last_pos > high) high = e.last_pos;
  }
  const read = plan.decisions.filter((d) => d.read).map((d) => d.entry);
  const { store } = archive;
  // A local directory archive is read in place; other stores' files are fetched to local disk first.
  const files: ScanFile[] = read.map((entry, i) => ({
    entry,
    path: store.localPath ? store.localPath(entry.object_key) : join(dir, `${i}.avro`),
    after: after.get(entry),
    trim:
      (window.fromMs !== undefined && Number(entry.min_ts_ms) < window.fromMs) ||
      (window.toMs !== undefined && Number(entry.max_ts_ms) > window.toMs),
  }));
  const total = read.reduce((n, e) => n + Number(e.bytes), 0);
  if (!store.localPath) {
    // Progress counts the events of the files fetched, so the bar reads the same while fetching and scanning.
    ctx.progress?.start(read.reduce((n, e) => n + Number(e.rows), 0));
    ctx.progress?.phase(`fetching ${plan.table}`);
    let events = 0;
    let bytes = 0;
    let next = 0;
    const worker = async () => {
      for (;;) {
        const f = files[next++];
        if (!f) return;
        writeFileSync(f.path, await store.get(f.entry.object_key, { sha256: f.entry.sha256 }));
        events += Number(f.entry.rows);
        bytes += Number(f.entry.bytes);
        ctx.progress?.update(events, bytes);
      }
    };
    await Promise.all(Array.from({ length: STAGE_CONCURRENCY }, worker));
    ctx.progress?.stop();
  }
  ctx.logger.info(
    { table: plan.table, files: files.length, of: listed.length, bytes: formatBytes(total) },
    'query: files fetched',
  );
  return {
    table: plan.table,
    columns,
    files,
    fromMs: window.fromMs,
    toMs: window.toMs,
  };
}

/** Appends a rebuilt state as `"<db>.<table>"`: a table of physical columns under a view with SQL types. */
async function loadRows(
  connection: DuckDBConnection,
  table: string,
  codec: TableCodec,
  rows: Iterable<[string, { row: Row | null }]>,
): Promise<void> {
  const columns: QueryColumn[] = codec.table.columns.map((c) => ({
    name: c.name,
    column: c,
    meta: undefined,
    ...columnTypes(c),
  }));
  const physical = `_state.${quoteIdent(table)}`;
  const duckTypes = physicalTypes(columns);
  await connection.run('CREATE SCHEMA IF NOT EXISTS _state');
  await connection.run(
    `CREATE OR REPLACE TABLE ${physical} (${columns.map((c, i) => `${quoteIdent(c.name)} ${duckTypes[i]?.toString()}`).join(', ')})`,
  );
  const appender: DuckDBAppender = await connection.createAppender(table, '_state');
  const setters = physicalSetters(columns);
  let batch: Row[] = [];
  const flush = () => {
    const chunk = DuckDBDataChunk.create(duckTypes, batch.length);
    columns.forEach((c, j) => {
      const vector = chunk.getColumnVector(j);
      batch.forEach((row, i) => vector.setItem(i, setters[j]?.(row[c.name] ?? null) as never));
      vector.flush();
    });
    appender.appendDataChunk(chunk);
    batch = [];
  };
  for (const [, slot] of rows) {
    if (!slot.row) continue;
    batch.push(projectRow(slot.row, codec));
    if (batch.length === 2048) flush();
  }
  if (batch.length > 0) flush();
  appender.closeSync();
  await connection.run(
    `CREATE OR REPLACE VIEW main.${quoteIdent(table)} AS SELECT ${columns.map(viewExpression).join(', ')} FROM ${physical}`,
  );
}

/** --explain: for each change table the files read and why the others are skipped; the state tables. */
export function describeQueryPlan(plan: QueryPlan): string {
  const lines: string[] = [];
  const iso = (ms: bigint | number) => new Date(Number(ms)).toISOString();
  for (const t of plan.changes) {
    const read = t.decisions.filter((d) => d.read);
    const sum = (ds: FileDecision[], f: (e: ManifestEntry) => bigint) =>
      ds.reduce((n, d) => n + Number(f(d.entry)), 0);
    lines.push(
      `changes.${quoteIdent(t.table)}: reads ${read.length} of ${t.decisions.length} files listed, ` +
        `${formatBytes(sum(read, (e) => e.bytes))} of ${formatBytes(sum(t.decisions, (e) => e.bytes))}, ` +
        `${sum(read, (e) => e.rows)} of ${sum(t.decisions, (e) => e.rows)} events`,
    );
    lines.push(
      t.listedDays
        ? `  manifests listed for the days ${iso(t.listedDays.fromMs).slice(0, 10)} .. ${iso(t.listedDays.toMs).slice(0, 10)} only`
        : '  manifests listed for every day (no time bound on every reference)',
    );
    if (plan.window.fromMs !== undefined || plan.window.toMs !== undefined) {
      lines.push(
        `  events from ${plan.window.fromMs === undefined ? 'the start' : iso(plan.window.fromMs)} to ${plan.window.toMs === undefined ? 'the end' : iso(plan.window.toMs)} (--from/--to)`,
      );
    }
    t.references.forEach((r, i) =>
      lines.push(
        `  reference ${i + 1}: ${r.length === 0 ? 'no predicate the manifests can use (every file)' : r.map((p) => p.text).join(' AND ')}`,
      ),
    );
    for (const d of t.decisions) {
      const e = d.entry;
      lines.push(
        d.read
          ? `  read  ${e.object_key}  ${iso(e.min_ts_ms)} .. ${iso(e.max_ts_ms)}  ${e.rows} events  ${formatBytes(Number(e.bytes))}`
          : `  skip  ${e.object_key}: ${d.reason}`,
      );
    }
  }
  for (const s of plan.state) {
    lines.push(
      `${quoteIdent(s.table)}: the table as of ${s.at}, rebuilt from the archive (tidemark restore --plan shows how)`,
    );
  }
  if (lines.length === 0) lines.push('the query reads no archived table');
  return lines.join('\n');
}
