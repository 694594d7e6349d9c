// The initial consistent snapshot: every selected table read inside one consistent-read transaction whose
// binlog position is known, emitted as `r` events. Rows stream through; no table is ever held in memory.

import mysql, { type ConnectionOptions, type TypeCastField } from 'mysql2';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import {
  binlogSequence,
  TidemarkError,
  tlsOptions,
  type ChangeEvent,
  type Logger,
  type SourceConfig,
  type TableSchema,
} from '../core/index.js';
import type { Checkpoint, KafkaSink } from './kafka-sink.js';
import type { CaptureMetrics } from './metrics.js';
import type { TableShape } from './row-mapper.js';
import { binlogEnd } from './source-checks.js';
import { readTableSchema } from './source-schema.js';
import { tableName, type TableId } from './table-selection.js';

export interface BinlogPoint {
  binlogFile: string;
  binlogOffset: number;
}

/** Connection settings that make the snapshot read values exactly as the binlog client decodes them. */
export function snapshotConnectionOptions(source: SourceConfig): ConnectionOptions {
  const ssl = tlsOptions(source.tls, 'source');
  return {
    ...(ssl ? { ssl } : {}),
    host: source.host,
    port: source.port,
    user: source.user,
    password: source.password,
    charset: 'utf8mb4',
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    decimalNumbers: false,
    timezone: 'Z',
    // JSON exactly as stored ("2.50" stays "2.50"); MariaDB flags JSON columns and mysql2 would parse them.
    jsonStrings: true,
    // Geometry as its stored bytes (SRID + WKB), JSON (MySQL) as text: the forms capture publishes.
    typeCast: (field: TypeCastField, next: () => unknown) => {
      if (field.type === 'GEOMETRY') return field.buffer();
      if (field.type === 'JSON') return field.string('utf8');
      return next();
    },
  };
}

/** Opens a consistent read and returns the binlog position it sees. The connection keeps the transaction open. */
export async function openConsistentRead(conn: Connection, isMariaDb: boolean): Promise<BinlogPoint> {
  await conn.query("SET SESSION time_zone = '+00:00'");
  await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
  if (isMariaDb) {
    // MariaDB reports the binlog position a consistent snapshot corresponds to, without any lock.
    await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
    const [rows] = await conn.query<RowDataPacket[]>("SHOW STATUS LIKE 'binlog_snapshot_%'");
    const status = Object.fromEntries(
      rows.map((r) => [String(r.Variable_name).toLowerCase(), String(r.Value)]),
    );
    const file = status.binlog_snapshot_file;
    const offset = Number(status.binlog_snapshot_position);
    if (!file || !Number.isFinite(offset)) {
      throw new TidemarkError(
        'SOURCE_MISCONFIGURED',
        'the source reports no binlog_snapshot_file/position for a consistent snapshot',
      );
    }
    return { binlogFile: file, binlogOffset: offset };
  }
  // MySQL: a brief global read lock pins the binlog position while the consistent read starts.
  try {
    // Never queue behind a long query while every write waits behind the lock: give up after 10 s instead.
    await conn.query('SET SESSION lock_wait_timeout = 10');
    await conn.query('FLUSH TABLES WITH READ LOCK');
  } catch (err) {
    throw new TidemarkError(
      'SOURCE_MISCONFIGURED',
      `the snapshot needs a brief global read lock: ${(err as Error).message}`,
      {
        cause: err,
        hint: "GRANT RELOAD ON *.* TO '<capture user>'@'<capture host>'; or set capture.snapshot: never",
      },
    );
  }
  try {
    await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
    const end = await binlogEnd(conn);
    return { binlogFile: end.file, binlogOffset: end.offset };
  } finally {
    await conn.query('UNLOCK TABLES');
  }
}

export interface SnapshotOptions {
  source: SourceConfig;
  isMariaDb: boolean;
  captureId: string;
  /** The source's server_id, recorded in every event. */
  sourceServerId: number;
  tables: readonly TableId[];
  /**
   * The checkpoint of an interrupted snapshot, if any: streaming continues from its position afterwards
   * (else from this snapshot's), and a retry that reads where it read repeats its event time.
   */
  interrupted: Checkpoint | undefined;
  shapeFor: (schema: TableSchema) => TableShape;
  /** Called after each batch of the snapshot is committed, with the checkpoint committed with it. */
  onCommitted?: (checkpoint: Checkpoint) => void;
  sink: KafkaSink;
  maxEvents: number;
  maxBytes: number;
  logger: Logger;
  metrics: CaptureMetrics;
  signal: AbortSignal;
}

/** Takes the snapshot and returns the streaming checkpoint committed with its last rows. */
export async function takeSnapshot(o: SnapshotOptions): Promise<Checkpoint> {
  // The callback connection streams result rows; its promise face runs the other statements.
  const raw = mysql.createConnection(snapshotConnectionOptions(o.source));
  const conn = raw.promise();
  try {
    const at = await openConsistentRead(conn, o.isMariaDb);
    const interrupted = o.interrupted;
    const streamFrom: BinlogPoint = interrupted
      ? { binlogFile: interrupted.binlogFile, binlogOffset: interrupted.binlogOffset }
      : at;
    const names = o.tables.map(tableName);
    const clock = Date.now();
    // A retry that reads at the interrupted snapshot's position repeats its events: same positions, so the
    // same event time too (a position never carries two different events).
    const before = interrupted?.snapshot;
    const sameRead = before?.binlogFile === at.binlogFile && before.binlogOffset === at.binlogOffset;
    const startedMs = sameRead && interrupted ? interrupted.tsMs : clock;
    const progress = (completed: boolean): Checkpoint => ({
      captureId: o.captureId,
      phase: completed ? 'streaming' : 'snapshot',
      binlogFile: streamFrom.binlogFile,
      binlogOffset: streamFrom.binlogOffset,
      gtidSet: null,
      tsMs: startedMs,
      writtenMs: Date.now(),
      snapshot: { binlogFile: at.binlogFile, binlogOffset: at.binlogOffset, tables: names, completed },
    });
    o.logger.info(
      { at, streamFrom, tables: names, ...(sameRead ? { retrying: true } : {}) },
      'snapshot: consistent read opened',
    );
    const file = binlogSequence(at.binlogFile);
    let total = 0;
    for (const table of o.tables) {
      const schema = await readTableSchema(conn, table);
      const shape = o.shapeFor(schema);
      const labels = { table: tableName(table), op: 'r' };
      const stream = raw.query(snapshotSelect(schema)).stream({ highWaterMark: 1000 });
      // Rows are numbered per table in primary-key order, so a retried snapshot at the same binlog
      // position gives every row the same position again.
      let row = 0;
      for await (const raw of stream as AsyncIterable<Record<string, unknown>>) {
        if (o.signal.aborted) {
          stream.destroy();
          throw new TidemarkError(
            'INTERNAL',
            'snapshot interrupted by shutdown; it restarts at the next start',
          );
        }
        const after = shape.mapRow(raw);
        const event: ChangeEvent = {
          op: 'r',
          before: null,
          after,
          key: shape.codec.keyOf(after),
          tsMs: startedMs,
          pos: { file, offset: at.binlogOffset, row },
          tx: `snapshot:${at.binlogFile}:${at.binlogOffset}`,
          source: {
            serverId: o.sourceServerId,
            db: table.db,
            table: table.table,
            schemaVersion: shape.codec.version,
          },
        };
        o.sink.add(shape.codec, event);
        o.metrics.events.inc(labels);
        row++;
        if (o.sink.bufferedEvents >= o.maxEvents || o.sink.bufferedBytes >= o.maxBytes) {
          await commitTimed(o, progress(false));
        }
      }
      total += row;
      o.logger.info({ table: tableName(table), rows: row }, 'snapshot: table done');
    }
    const done = progress(true);
    await commitTimed(o, done);
    await conn.query('COMMIT');
    o.logger.info({ rows: total, seconds: (Date.now() - clock) / 1000 }, 'snapshot: completed');
    return done;
  } finally {
    await conn.end().catch(() => undefined);
  }
}

async function commitTimed(o: SnapshotOptions, checkpoint: Checkpoint): Promise<void> {
  const stop = o.metrics.commitSeconds.startTimer();
  await o.sink.commit(checkpoint);
  stop();
  o.onCommitted?.(checkpoint);
}

const quote = (name: string) => `\`${name.replace(/`/g, '``')}\``;

/**
 * The snapshot query of a table: FLOAT read as DOUBLE (the text protocol rounds FLOAT to six digits; the
 * binlog has the exact value), rows in primary-key order; with `byKey`, the one row whose primary key is
 * given as parameters.
 */
export function snapshotSelect(schema: TableSchema, byKey = false): string {
  const columns = schema.columns.map((c) =>
    c.type === 'float' ? `CAST(${quote(c.name)} AS DOUBLE) AS ${quote(c.name)}` : quote(c.name),
  );
  const tail = byKey
    ? ` WHERE ${schema.primaryKey.map((c) => `${quote(c)} = ?`).join(' AND ')}`
    : schema.primaryKey.length > 0
      ? ` ORDER BY ${schema.primaryKey.map(quote).join(', ')}`
      : '';
  return `SELECT ${columns.join(', ')} FROM ${quote(schema.db)}.${quote(schema.table)}${tail}`;
}
