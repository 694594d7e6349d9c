// The capture daemon: one active instance per source streams the binlog into Kafka, checkpointing at
// transaction boundaries in the same Kafka transaction as the events before them; others wait as standbys.

import type { Connection, RowDataPacket } from 'mysql2/promise';
import type { ColumnSchema, RowData, UpdateRowData } from '@vlasky/zongji';
import {
  binlogSequence,
  parseColumnType,
  TidemarkError,
  tlsOptions,
  type CaptureConfig,
  type ChangeEvent,
  type KafkaConfig,
  type Logger,
  type SourceConfig,
  type TableSchema,
  sleep,
} from '../core/index.js';
import { BinlogStream, type BoundaryItem, type RowsItem } from './binlog-stream.js';
import { KafkaSink, type Checkpoint } from './kafka-sink.js';
import type { CaptureMetrics } from './metrics.js';
import { buildShape, type TableShape } from './row-mapper.js';
import { takeSnapshot } from './snapshot.js';
import { binlogEnd, checkSource, connectSource, type SourceInfo } from './source-checks.js';
import { listTables, readJsonColumns, withJsonColumns, type JsonColumns } from './source-schema.js';
import { TableSelection, tableName } from './table-selection.js';

export interface CaptureOptions {
  source: SourceConfig;
  kafka: KafkaConfig;
  capture: CaptureConfig;
  logger: Logger;
  metrics: CaptureMetrics;
  /** Ignore the checkpoint and take a new snapshot (after the binlog was purged past it). */
  resnapshot?: boolean;
}

/** Errors a restart cannot fix: the operator has to act. */
const FATAL = new Set([
  'SOURCE_MISCONFIGURED',
  'CONFIG_INVALID',
  'CONFIG_NOT_FOUND',
  'KAFKA_REJECTED',
  'UNSUPPORTED_TYPE',
]);

/** Statements that may change which of a table's columns are JSON. */
const TABLE_DDL =
  /^\s*(?:ALTER\s+(?:ONLINE\s+|IGNORE\s+)*TABLE|CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+)?TABLE|RENAME\s+TABLE)\b/i;

/**
 * A schema statement of the binlog as it may be logged: table, index, view and database DDL only (never
 * CREATE USER, GRANT, SET PASSWORD or server definitions, which carry credentials), its string literals
 * elided, cut at 200 characters. Undefined for anything else.
 */
export function ddlForLog(statement: string): string | undefined {
  if (
    !/^\s*(ALTER|CREATE|DROP|RENAME|TRUNCATE)\s+(TABLE|INDEX|UNIQUE|VIEW|DATABASE|SCHEMA)\b/i.test(statement)
  ) {
    return undefined;
  }
  return statement.replace(/'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*"/g, "'…'").slice(0, 200);
}

/** Rethrows a failure recorded by a callback (a function call, so it is read at that moment). */
function throwIfFailed(holder: { failure?: Error }): void {
  if (holder.failure) throw holder.failure;
}

export class Capture {
  readonly captureId: string;
  private readonly selection: TableSelection;
  private readonly logger: Logger;
  private readonly shapes = new Map<string, { signature: string; shape: TableShape }>();
  private resnapshot: boolean;
  private controlLost: Error | undefined;
  /** Last checkpoint committed, for status and health. */
  lastCheckpoint: Checkpoint | undefined;

  constructor(private readonly o: CaptureOptions) {
    this.captureId = o.capture.id ?? `${o.source.host}-${o.source.port}`.replace(/[^A-Za-z0-9._-]/g, '_');
    this.logger = o.logger.child({ capture: this.captureId });
    this.resnapshot = o.resnapshot ?? false;
    this.selection = new TableSelection({
      include: o.source.tables.include,
      exclude: o.source.tables.exclude,
      columns: o.source.columns,
      maskKey: o.source.maskKey,
    });
  }

  /** Runs until the signal aborts; reconnects with backoff after failures a restart can fix. */
  async run(signal: AbortSignal): Promise<void> {
    let backoff = this.o.capture.retry.minMs;
    while (!signal.aborted) {
      try {
        await this.session(signal);
        backoff = this.o.capture.retry.minMs;
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof TidemarkError && FATAL.has(err.code)) throw err;
        const message = err instanceof TidemarkError ? err.describe() : (err as Error).message;
        this.o.metrics.setState('reconnecting');
        this.o.metrics.restarts.inc({ reason: err instanceof TidemarkError ? err.code : 'INTERNAL' });
        this.logger.warn(
          { err, retryInMs: backoff },
          `capture interrupted, resuming from the last checkpoint: ${message}`,
        );
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, this.o.capture.retry.maxMs);
      }
    }
    this.o.metrics.setState('stopped');
  }

  private connectSource(): Promise<Connection> {
    return connectSource(this.o.source);
  }

  /** One connected stretch: checks, leadership, checkpoint, optional snapshot, then streaming until failure or stop. */
  private async session(signal: AbortSignal): Promise<void> {
    const control = await this.connectSource();
    // The control connection holds the leadership lock; losing it ends this session (the lock is re-taken).
    this.controlLost = undefined;
    control.on('error', (err: Error) => {
      this.controlLost = err;
    });
    let sink: KafkaSink | undefined;
    let keepAlive: NodeJS.Timeout | undefined;
    try {
      const tables = (await listTables(control)).filter((t) => this.selection.captures(t));
      // A user without SELECT does not even see a table, so tables named literally are checked as well.
      const named = this.selection
        .literalTables()
        .filter((t) => !tables.some((v) => tableName(v) === tableName(t)));
      const info = await checkSource(control, {
        host: this.o.source.host,
        user: this.o.source.user,
        serverId: this.o.source.serverId,
        tables: [...tables, ...named],
      });
      if (tables.length === 0) {
        throw new TidemarkError(
          'CONFIG_INVALID',
          `no table of the source matches source.tables (include ${this.o.source.tables.include.join(', ')})`,
          {
            hint: 'check the patterns, and that the capture user has SELECT on the tables (it only sees tables it may read)',
          },
        );
      }
      if (!(await this.becomeLeader(control, signal))) return;
      this.jsonColumns = await readJsonColumns(control);
      // An idle connection is closed by the server after wait_timeout, and the lock with it.
      keepAlive = setInterval(() => void control.query('SELECT 1').catch(() => undefined), 60_000);

      sink = new KafkaSink({ kafka: this.o.kafka, captureId: this.captureId, logger: this.logger });
      await sink.connect();
      await sink.prepareTables(tables);
      let checkpoint = this.resnapshot ? undefined : await sink.readCheckpoint();
      if (checkpoint === undefined && this.o.capture.snapshot === 'never') {
        checkpoint = await this.startAtEnd(control, sink);
      } else if (checkpoint === undefined || checkpoint.phase === 'snapshot') {
        this.o.metrics.setState('snapshot');
        checkpoint = await takeSnapshot({
          source: this.o.source,
          isMariaDb: info.isMariaDb,
          captureId: this.captureId,
          sourceServerId: info.serverId,
          tables,
          interrupted: checkpoint,
          shapeFor: (schema) => this.shapeOf(schema),
          // Once progress is committed, a retry must resume this snapshot's stream position, not start afresh.
          onCommitted: (progress) => {
            this.noteCheckpoint(progress);
            this.resnapshot = false;
          },
          sink,
          maxEvents: this.o.capture.batch.maxEvents,
          maxBytes: this.o.capture.batch.maxBytes,
          logger: this.logger,
          metrics: this.o.metrics,
          signal,
        });
        this.resnapshot = false;
      }
      this.noteCheckpoint(checkpoint);
      await this.stream(checkpoint, info, sink, control, signal);
    } finally {
      clearInterval(keepAlive);
      await sink?.close();
      await control.end().catch(() => undefined);
    }
  }

  /**
   * Takes the source-side lock that makes this instance the active one. The lock lives as long as the
   * control connection, so a crashed instance releases it and a standby takes over.
   */
  private async becomeLeader(control: Connection, signal: AbortSignal): Promise<boolean> {
    const lock = `tidemark.capture.${this.captureId}`.slice(0, 64);
    let announced = false;
    while (!signal.aborted) {
      const [rows] = await control.query<RowDataPacket[]>(
        'SELECT GET_LOCK(?, 0) AS got, IS_USED_LOCK(?) AS holder',
        [lock, lock],
      );
      if (Number(rows[0]?.got) === 1) {
        if (announced) this.logger.info('standby: the active instance is gone, taking over');
        return true;
      }
      if (!announced) {
        this.o.metrics.setState('standby');
        this.logger.info(
          { holder: rows[0]?.holder, lock },
          'standby: another capture instance is active for this source; waiting',
        );
        announced = true;
      }
      await sleep(1000, signal);
    }
    return false;
  }

  private async startAtEnd(control: Connection, sink: KafkaSink): Promise<Checkpoint> {
    const end = await binlogEnd(control);
    const checkpoint: Checkpoint = {
      captureId: this.captureId,
      phase: 'streaming',
      binlogFile: end.file,
      binlogOffset: end.offset,
      gtidSet: null,
      tsMs: Date.now(),
      writtenMs: Date.now(),
      snapshot: null,
    };
    await sink.commit(checkpoint);
    this.logger.info(
      { binlogFile: checkpoint.binlogFile, offset: checkpoint.binlogOffset },
      'no snapshot (capture.snapshot: never): streaming from the current end of the binlog',
    );
    return checkpoint;
  }

  private shapeOf(schema: TableSchema): TableShape {
    const name = `${schema.db}.${schema.table}`;
    const signature = JSON.stringify([schema.columns, schema.primaryKey]);
    const cached = this.shapes.get(name);
    if (cached?.signature === signature) return cached.shape;
    const shape = buildShape(schema, this.selection.rulesFor(schema), this.selection);
    if (cached)
      this.logger.info(
        { table: name, version: shape.codec.version, previous: cached.shape.codec.version },
        'table schema changed: new schema version',
      );
    this.shapes.set(name, { signature, shape });
    return shape;
  }

  /**
   * The shape of a rows event's table. The binlog client builds a new column list for every table map
   * (one per transaction), so shapes are also found by a cheap signature of the columns and key.
   */
  private shapeFromBinlog(item: RowsItem): TableShape {
    const name = tableName(item);
    const json = this.jsonColumns.get(name);
    // The client builds new column lists for every table map (one per transaction): the same columns as
    // the table's last map take its shape without building the signature.
    const last = this.lastShapes.get(name);
    if (last && last.json === json && (last.columns === item.columns || sameColumns(last, item))) {
      last.columns = item.columns;
      return last.shape;
    }
    let signature = `${item.db}.${item.table}|${item.primaryKey?.join(',') ?? ''}|${[...(json ?? [])].join(',')}`;
    for (const c of item.columns) signature += `|${c.COLUMN_NAME} ${c.COLUMN_TYPE}`;
    let shape = this.shapesBySignature.get(signature);
    if (!shape) {
      const columns = withJsonColumns(
        item.columns.map((c: ColumnSchema) => parseColumnType(c.COLUMN_NAME, c.COLUMN_TYPE)),
        json,
      );
      const primaryKey = (item.primaryKey ?? [])
        .map((i) => columns[i]?.name)
        .filter((n): n is string => n !== undefined);
      shape = this.shapeOf({ db: item.db, table: item.table, columns, primaryKey });
      this.shapesBySignature.set(signature, shape);
    }
    this.lastShapes.set(name, { columns: item.columns, primaryKey: item.primaryKey, json, shape });
    return shape;
  }

  private readonly lastShapes = new Map<string, LastShape>();

  /** MariaDB's JSON columns (LONGTEXT in the binlog), re-read after each table DDL. */
  private jsonColumns: JsonColumns = new Map();
  private readonly shapesBySignature = new Map<string, TableShape>();

  private noteCheckpoint(c: Checkpoint): void {
    this.lastCheckpoint = c;
    const m = this.o.metrics;
    m.checkpointFile.set(binlogSequence(c.binlogFile));
    m.checkpointOffset.set(c.binlogOffset);
    m.checkpointTime.set(c.writtenMs / 1000);
    m.setLag(Math.max(0, (Date.now() - c.tsMs) / 1000));
  }

  private async stream(
    from: Checkpoint,
    info: SourceInfo,
    sink: KafkaSink,
    control: Connection,
    signal: AbortSignal,
  ): Promise<void> {
    const cfg = this.o.capture;
    const binlog = new BinlogStream({
      host: this.o.source.host,
      port: this.o.source.port,
      user: this.o.source.user,
      password: this.o.source.password,
      ssl: tlsOptions(this.o.source.tls, 'source'),
      serverId: this.o.source.serverId,
      binlogFile: from.binlogFile,
      offset: from.binlogOffset,
      databases: this.selection.databases(),
      highWater: cfg.queueHighWater,
      readAheadBytes: cfg.readAheadBytes,
      heartbeatSeconds: cfg.heartbeatSeconds,
    });
    const abort = () => binlog.close();
    signal.addEventListener('abort', abort);
    if (signal.aborted) {
      signal.removeEventListener('abort', abort);
      return;
    }
    let boundary: BoundaryItem | undefined;
    let written = from;
    let batchStartedAt = 0;
    let inflight: Promise<void> | undefined;
    // Counts of a session that failed before its commit were never sent: the new session reads them again.
    this.takeEventCounts();
    // A commit that fails while the stream is idle is noticed at the next item, not left unobserved.
    const commit: { failure?: Error; running: boolean } = { running: false };

    const flush = async (): Promise<void> => {
      const checkpoint: Checkpoint | undefined =
        boundary && (boundary.binlogFile !== written.binlogFile || boundary.offset !== written.binlogOffset)
          ? {
              ...written,
              phase: 'streaming',
              binlogFile: boundary.binlogFile,
              binlogOffset: boundary.offset,
              gtidSet: boundary.gtidSet ?? null,
              tsMs: boundary.tsMs,
              writtenMs: Date.now(),
            }
          : undefined;
      if (sink.bufferedEvents === 0 && checkpoint === undefined) return;
      // One transaction in flight at a time; the next batch is built while it commits. A failed one ends the
      // session before anything later (with a later checkpoint) can be committed.
      // The queue's depth is set at every batch and while idle (not per item), before a wait on Kafka.
      this.o.metrics.queueDepth.set(binlog.depth);
      await inflight;
      throwIfFailed(commit);
      const stop = this.o.metrics.commitSeconds.startTimer();
      const counts = this.takeEventCounts();
      commit.running = true;
      inflight = sink.commit(checkpoint).then(
        () => {
          commit.running = false;
          stop();
          for (const [counter, n] of counts) counter.inc(n);
          if (checkpoint) this.noteCheckpoint(checkpoint);
          binlog.nudge();
        },
        (err: unknown) => {
          commit.running = false;
          commit.failure = err instanceof Error ? err : new Error(String(err));
          binlog.nudge();
        },
      );
      if (checkpoint) written = checkpoint;
      batchStartedAt = 0;
    };

    try {
      await binlog.start();
      this.o.metrics.setState('streaming');
      this.logger.info(
        { binlogFile: from.binlogFile, offset: from.binlogOffset, server: info.version },
        'streaming the binlog',
      );
      let lastFlushAt = Date.now();
      for (;;) {
        const now = Date.now();
        // While a transaction is in flight, items are taken as they come; its completion nudges the stream.
        const wait =
          batchStartedAt > 0 && !commit.running
            ? Math.max(0, batchStartedAt + cfg.batch.lingerMs - now)
            : Math.min(1000, cfg.checkpointIntervalMs);
        const item = binlog.poll() ?? (await binlog.take(wait));
        throwIfFailed(commit);
        if (this.controlLost !== undefined) {
          throw new TidemarkError(
            'SOURCE_UNREACHABLE',
            `lost the control connection that holds the leadership lock: ${this.controlLost.message}`,
          );
        }
        if (item === 'closed') break;
        if (item !== 'idle' && this.o.metrics.sourceSilentNow()) this.o.metrics.setSourceSilent(false);
        if (item === 'idle') {
          this.o.metrics.queueDepth.set(binlog.depth);
          const silentMs = Date.now() - binlog.lastEventAt;
          this.o.metrics.setSourceSilent(silentMs > cfg.silentAfterSeconds * 1000);
          if (silentMs > cfg.silentAfterSeconds * 1000) {
            throw new TidemarkError(
              'SOURCE_UNREACHABLE',
              `the source sent no event and no heartbeat for ${Math.round(silentMs / 1000)} s (capture.silentAfterSeconds); reconnecting`,
            );
          }
          if (
            !commit.running &&
            (sink.bufferedEvents > 0 || Date.now() - lastFlushAt >= cfg.checkpointIntervalMs)
          ) {
            await flush();
            lastFlushAt = Date.now();
          }
          // Idle with nothing sent but not committed: capture is as far as the source, whatever the time of
          // the last change it saw (a quiet source is no lag).
          const pending =
            boundary !== undefined &&
            (boundary.binlogFile !== written.binlogFile || boundary.offset !== written.binlogOffset);
          if (!commit.running && sink.bufferedEvents === 0 && !pending) this.o.metrics.setLag(0);
          continue;
        }
        if (item.kind === 'rows') {
          if (!this.selection.captures(item)) continue;
          this.addRows(item, info, sink);
          if (batchStartedAt === 0) batchStartedAt = Date.now();
          // A source transaction larger than a batch streams through in several Kafka transactions; the
          // checkpoint stays at the boundary before it until it commits, so a crash re-sends it whole
          // (readers deduplicate by position).
          if (
            sink.bufferedEvents >= 2 * cfg.batch.maxEvents ||
            sink.bufferedBytes >= 2 * cfg.batch.maxBytes
          ) {
            await flush();
          }
        } else if (item.kind === 'heartbeat') {
          // The source's end moved past the last boundary without a captured change (a rotation, other
          // databases' traffic): resume from there, so a quiet source does not look like capture fell behind.
          const last = boundary ?? { binlogFile: written.binlogFile, offset: written.binlogOffset };
          const ahead =
            binlogSequence(item.binlogFile) - binlogSequence(last.binlogFile) || item.offset - last.offset;
          if (ahead > 0) {
            boundary = {
              kind: 'boundary',
              binlogFile: item.binlogFile,
              offset: item.offset,
              tsMs: boundary?.tsMs ?? written.tsMs,
              gtid: undefined,
              gtidSet: item.gtidSet,
            };
          }
        } else if (item.kind === 'boundary') {
          boundary = item;
          const ddl = item.statement === undefined ? undefined : ddlForLog(item.statement);
          if (ddl !== undefined) this.logger.info({ statement: ddl }, 'DDL in the binlog');
          // Which LONGTEXTs are JSON is not in the binlog; the server's present answer is the best there is.
          if (item.statement !== undefined && TABLE_DDL.test(item.statement)) {
            this.jsonColumns = await readJsonColumns(control);
          }
          // Commit at this boundary when the batch is full, when its first event waited lingerMs (a steady
          // trickle must not wait for a full batch), or when the checkpoint is due (busy uncaptured tables).
          // A full batch waits for the transaction in flight (that is the backpressure); a batch that is only
          // due keeps growing while one is in flight, so decoding and committing overlap.
          const now = Date.now();
          const full = sink.bufferedEvents >= cfg.batch.maxEvents || sink.bufferedBytes >= cfg.batch.maxBytes;
          const due =
            (batchStartedAt > 0 && now - batchStartedAt >= cfg.batch.lingerMs) ||
            now - lastFlushAt >= cfg.checkpointIntervalMs;
          if (full || (due && !commit.running)) {
            await flush();
            lastFlushAt = now;
          }
        }
      }
      // Graceful stop: what was read up to the last boundary is committed with its checkpoint.
      await flush();
      await inflight;
      throwIfFailed(commit);
    } finally {
      signal.removeEventListener('abort', abort);
      binlog.close();
      this.o.metrics.queueDepth.set(0);
      if (inflight) await inflight.catch(() => undefined);
      sink.discard();
    }
  }

  private addRows(item: RowsItem, info: SourceInfo, sink: KafkaSink): void {
    const shape = this.shapeFromBinlog(item);
    const codec = shape.codec;
    const source = { serverId: info.serverId, db: item.db, table: item.table, schemaVersion: codec.version };
    const { file, offset, gtid, op, rows } = item;
    const tx = gtid ?? null;
    for (let row = 0; row < rows.length; row++) {
      const raw = rows[row];
      let before = null;
      let after = null;
      if (op === 'c') after = shape.mapRow(raw as RowData);
      else if (op === 'd') before = shape.mapRow(raw as RowData);
      else {
        before = shape.mapRow((raw as UpdateRowData).before);
        after = shape.mapRow((raw as UpdateRowData).after);
      }
      const event: ChangeEvent = {
        op,
        before,
        after,
        key: codec.keyOf((after ?? before) as NonNullable<typeof after>),
        tsMs: item.tsMs,
        pos: gtid === undefined ? { file, offset, row } : { file, offset, row, gtid },
        tx,
        source,
      };
      sink.add(codec, event);
    }
    this.eventCounter(item).pending += rows.length;
  }

  /**
   * Events counted since the last batch went to Kafka, per table and op: they reach the Prometheus
   * counter once their transaction committed (the counter says "sent to Kafka"), and a rows event costs
   * an addition rather than a labelled increment.
   */
  private takeEventCounts(): [{ inc(n: number): void }, number][] {
    const out: [{ inc(n: number): void }, number][] = [];
    for (const counter of this.eventCounters.values()) {
      if (counter.pending === 0) continue;
      out.push([counter.child, counter.pending]);
      counter.pending = 0;
    }
    return out;
  }

  /** The events counter of one table and op, looked up once rather than by labels for every rows event. */
  private eventCounter(item: RowsItem): PendingCount {
    const last = this.lastCounter;
    if (last && last.op === item.op && last.table === item.table && last.db === item.db) return last.counter;
    const key = `${item.op}${tableName(item)}`;
    let counter = this.eventCounters.get(key);
    if (!counter) {
      counter = { child: this.o.metrics.events.labels({ table: tableName(item), op: item.op }), pending: 0 };
      this.eventCounters.set(key, counter);
    }
    this.lastCounter = { op: item.op, db: item.db, table: item.table, counter };
    return counter;
  }

  /** The counter of the last rows event's table and op, which the next one usually shares. */
  private lastCounter: { op: string; db: string; table: string; counter: PendingCount } | undefined;

  private readonly eventCounters = new Map<string, PendingCount>();
}

interface PendingCount {
  child: { inc(n: number): void };
  pending: number;
}

interface LastShape {
  columns: readonly ColumnSchema[];
  primaryKey: readonly number[] | undefined;
  json: ReadonlySet<string> | undefined;
  shape: TableShape;
}

function sameColumns(last: LastShape, item: RowsItem): boolean {
  const a = last.columns;
  const b = item.columns;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i]!.COLUMN_NAME !== b[i]!.COLUMN_NAME || a[i]!.COLUMN_TYPE !== b[i]!.COLUMN_TYPE) return false;
  }
  const pa = last.primaryKey ?? [];
  const pb = item.primaryKey ?? [];
  return pa.length === pb.length && pa.every((k, i) => k === pb[i]);
}
