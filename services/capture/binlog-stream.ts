// The source's binary log as an async stream of row changes and transaction boundaries, with the
// backpressure, heartbeats and error reporting that the binlog client itself does not have.

import ZongJi, {
  type AnyBinlogEvent,
  type ColumnSchema,
  type DeleteRowsEvent,
  type HeartbeatEvent,
  type QueryEvent,
  type RowData,
  type UpdateRowData,
  type UpdateRowsEvent,
  type WriteRowsEvent,
  type XidEvent,
} from '@vlasky/zongji';
import { binlogSequence, TidemarkError, type TlsOptions } from '../core/index.js';

export interface RowsItem {
  kind: 'rows';
  op: 'c' | 'u' | 'd';
  db: string;
  table: string;
  columns: readonly ColumnSchema[];
  /** Primary-key column indexes from the table map (binlog_row_metadata=FULL). */
  primaryKey: readonly number[] | undefined;
  rows: readonly RowData[] | readonly UpdateRowData[];
  file: number;
  offset: number;
  tsMs: number;
  gtid: string | undefined;
}

/** The end of a source transaction (or of a standalone statement such as DDL): a place to resume from. */
export interface BoundaryItem {
  kind: 'boundary';
  binlogFile: string;
  offset: number;
  tsMs: number;
  gtid: string | undefined;
  gtidSet: string | undefined;
  /** Statement text for DDL and other standalone statements. */
  statement?: string;
}

/**
 * The server had nothing more to send: its position is the end of the binlog, which is always between
 * transactions. After a rotation on a quiet source it is the only sign that the stream moved on.
 */
export interface HeartbeatItem {
  kind: 'heartbeat';
  binlogFile: string;
  offset: number;
  gtidSet: string | undefined;
}

export type BinlogItem = RowsItem | BoundaryItem | HeartbeatItem;

export interface BinlogStreamOptions {
  host: string;
  port: number;
  user: string;
  password: string | undefined;
  /** TLS options (mysql2's `ssl`), when the source is reached over TLS. */
  ssl?: TlsOptions | undefined;
  serverId: number;
  /** Resume point: the end of the last committed transaction. */
  binlogFile: string;
  offset: number;
  /** Databases to decode rows of (undefined: all). */
  databases: string[] | undefined;
  /** Decoded rows (other events count one each) queued before decoding pauses. */
  highWater?: number;
  /** Bytes of binlog received but not yet decoded (while decoding pauses) before the socket pauses. */
  readAheadBytes?: number;
  /** Seconds between server heartbeats while the binlog is idle. */
  heartbeatSeconds?: number;
}

const EVENTS = [
  'tablemap',
  'writerows',
  'updaterows',
  'deleterows',
  'xid',
  'query',
  'rotate',
  'heartbeat',
  'mariadbgtid',
  'gtid',
];

/** Opens the binlog at a position and yields its items in order until closed or failed. */
export class BinlogStream {
  private readonly zongji: ZongJi;
  private readonly queue: BinlogItem[] = [];
  /** Rows in the queue (other items count one each), against highWater. */
  private queuedRows = 0;
  private readonly highWater: number;
  private readonly readAhead: ReadAhead;
  private paused = false;
  private failure: Error | undefined;
  private closed = false;
  private wake: (() => void) | undefined;
  /**
   * The timer of a waiting take(), and when it fires. Items wake a waiter without clearing it: a take()
   * whose deadline is no earlier reuses it (waking at its time and waiting again for the rest), so a busy
   * stream arms about one timer per wait period rather than one per item.
   */
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;
  /** Wall-clock time of the last event or heartbeat from the server, to tell a silent stall. */
  lastEventAt = Date.now();
  private readonly primaryKeys = new Map<number, number[]>();
  /** Between a transaction's start and its end; boundaries are only taken outside. */
  private inTransaction = false;
  private rejectStart: ((err: Error) => void) | undefined;

  constructor(private readonly options: BinlogStreamOptions) {
    this.highWater = options.highWater ?? 2_000;
    this.readAhead = new ReadAhead(options.readAheadBytes ?? 16 * 1024 * 1024);
    this.zongji = new ZongJi({
      host: options.host,
      port: options.port,
      user: options.user,
      password: options.password,
      ...(options.ssl ? { ssl: options.ssl } : {}),
      dateStrings: true,
      // TIMESTAMP values are formatted in UTC whatever the process time zone, as in the snapshot.
      timezone: 'Z',
      charset: 'utf8mb4',
    });
    // Geometry as its stored bytes (SRID + WKB), not decoded points (patches/@vlasky+zongji+0.9.0.patch).
    (this.zongji as unknown as { geometryAsBuffer: boolean }).geometryAsBuffer = true;
    this.zongji.on('binlog', (event: AnyBinlogEvent) => this.onEvent(event));
    this.zongji.on('error', (err: Error) => this.fail(err));
  }

  /** Connects and starts reading; resolves once the server accepted the dump request. */
  async start(): Promise<void> {
    const heartbeatNs = BigInt(Math.round((this.options.heartbeatSeconds ?? 5) * 1e9));
    await new Promise<void>((resolve, reject) => {
      this.rejectStart = reject;
      const onError = (err: Error) => reject(translateError(err, this.options));
      this.zongji.once('ready', () => {
        this.zongji.off('error', onError);
        this.rejectStart = undefined;
        resolve();
      });
      this.zongji.once('error', onError);
      this.zongji.start({
        serverId: this.options.serverId,
        filename: this.options.binlogFile,
        position: this.options.offset,
        includeEvents: EVENTS,
        ...(this.options.databases
          ? { includeSchema: Object.fromEntries(this.options.databases.map((d) => [d, true])) }
          : {}),
      });
      // start() opens the binlog connection synchronously and sends the dump request only after an
      // asynchronous preamble; the connection runs queries in order, so this lands before the dump and
      // the server then sends a heartbeat whenever it has had nothing to send for that long.
      const connection = (
        this.zongji as unknown as {
          connection: { query: (sql: string, cb: (err: Error | null) => void) => void };
        }
      ).connection;
      connection.query(`SET @master_heartbeat_period = ${heartbeatNs}`, (err) => {
        if (err) this.fail(err);
      });
    });
  }

  /** Stops reading. Errors the client emits for events it had buffered are noise from here on. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.rejectStart?.(new TidemarkError('INTERNAL', 'the binlog stream was closed while it was starting'));
    this.zongji.removeAllListeners('binlog');
    this.zongji.on('error', () => undefined);
    this.zongji.stop();
    clearTimeout(this.timer);
    this.timer = undefined;
    this.wake?.();
  }

  /** Makes a waiting take() return 'idle' now (e.g. a commit finished and a due flush can go). */
  nudge(): void {
    this.nudged = true;
    this.wake?.();
  }

  private nudged = false;

  /** Rows decoded and waiting (other items count one each). */
  get depth(): number {
    return this.queuedRows;
  }

  private fail(err: Error): void {
    if (this.closed || this.failure) return;
    this.failure = translateError(err, this.options);
    this.wake?.();
  }

  private push(item: BinlogItem): void {
    this.queue.push(item);
    this.queuedRows += weight(item);
    if (!this.paused && this.queuedRows >= this.highWater) {
      this.paused = true;
      this.pauseDecoding();
    }
    // The first item wakes a waiting take(); the others of the same chunk find it awake.
    const wake = this.wake;
    if (wake !== undefined) {
      this.wake = undefined;
      wake();
    }
  }

  private socket(): SourceConnection | undefined {
    return (this.zongji as unknown as { connection?: SourceConnection }).connection;
  }

  private pauseDecoding(): void {
    const connection = this.socket();
    if (connection) this.readAhead.pause(connection);
  }

  private onEvent(event: AnyBinlogEvent): void {
    // After a failure the client may go on (e.g. skipping rows it could not decode); nothing it sends
    // then may reach a checkpoint, so the stream takes no more events.
    if (this.failure || this.closed) return;
    this.lastEventAt = Date.now();
    const name = event.getEventName();
    const binlogFile = this.zongji.options.filename ?? this.options.binlogFile;
    switch (name) {
      case 'writerows':
      case 'updaterows':
      case 'deleterows': {
        const rowsEvent = event as WriteRowsEvent | UpdateRowsEvent | DeleteRowsEvent;
        const entry = rowsEvent.tableMap[rowsEvent.tableId];
        if (!entry) return;
        if (rowsEvent.nextPosition === 0) {
          this.fail(
            new TidemarkError(
              'SOURCE_MISCONFIGURED',
              'the source writes end_log_pos=0 inside transactions (MariaDB 11.4+)',
              {
                hint: 'tidemark positions rows by binlog offset; run it against MariaDB up to 11.3 or MySQL for now',
              },
            ),
          );
          return;
        }
        const tableMap = (entry as unknown as { primaryKey?: number[] }).primaryKey;
        this.push({
          kind: 'rows',
          op: name === 'writerows' ? 'c' : name === 'updaterows' ? 'u' : 'd',
          db: entry.parentSchema,
          table: entry.tableName,
          columns: entry.columnSchemas,
          primaryKey: tableMap ?? this.primaryKeys.get(rowsEvent.tableId),
          rows: rowsEvent.rows,
          file: this.sequenceOf(binlogFile),
          offset: rowsEvent.nextPosition,
          tsMs: rowsEvent.timestamp,
          gtid: rowsEvent.gtid,
        });
        return;
      }
      case 'tablemap': {
        const map = event as unknown as { tableId: number; primaryKey?: number[] };
        if (map.primaryKey) this.primaryKeys.set(map.tableId, map.primaryKey);
        return;
      }
      case 'mariadbgtid': {
        // MariaDB replaces BEGIN by a GTID event; a standalone group (DDL) has no commit of its own.
        this.inTransaction = !(event as unknown as { standalone: boolean }).standalone;
        return;
      }
      case 'xid': {
        const xid = event as XidEvent;
        this.inTransaction = false;
        this.push(this.boundary(binlogFile, xid.nextPosition, xid.timestamp, xid.gtid));
        return;
      }
      case 'query': {
        const query = event as QueryEvent;
        const sql = query.query.trim();
        if (/^(BEGIN|XA START)\b/i.test(sql)) {
          this.inTransaction = true;
          return;
        }
        // Inside a transaction only its end is a place to resume from (not SAVEPOINT, XA END, …).
        const ends =
          /^(COMMIT|ROLLBACK|XA COMMIT|XA ROLLBACK)\b/i.test(sql) && !/^ROLLBACK\s+TO\b/i.test(sql);
        if (this.inTransaction && !ends) return;
        this.inTransaction = false;
        this.push({
          ...this.boundary(binlogFile, query.nextPosition, query.timestamp, query.gtid),
          statement: sql,
        });
        return;
      }
      case 'heartbeat': {
        const hb = event as HeartbeatEvent;
        const offset = Number(hb.position ?? hb.nextPosition);
        // Inside a transaction (never expected at the binlog's end) a heartbeat is no place to resume from.
        if (this.inTransaction || !offset) return;
        this.push({
          kind: 'heartbeat',
          binlogFile: hb.binlogName || binlogFile,
          offset,
          gtidSet: this.zongji.gtidSet,
        });
        return;
      }
      default:
        return;
    }
  }

  /** The sequence number of the binlog file, parsed once per file rather than for every rows event. */
  private sequenceOf(binlogFile: string): number {
    if (binlogFile !== this.lastFile.name)
      this.lastFile = { name: binlogFile, seq: binlogSequence(binlogFile) };
    return this.lastFile.seq;
  }

  private lastFile = { name: '', seq: 0 };

  private boundary(binlogFile: string, offset: number, tsMs: number, gtid: string | undefined): BoundaryItem {
    return { kind: 'boundary', binlogFile, offset, tsMs, gtid, gtidSet: this.zongji.gtidSet };
  }

  /** The next queued item, if one is waiting and no failure came first (no promise when there is one). */
  poll(): BinlogItem | undefined {
    if (this.failure) return undefined;
    const item = this.queue.shift();
    if (item !== undefined) this.taken(item);
    return item;
  }

  private taken(item: BinlogItem): void {
    this.queuedRows -= weight(item);
    if (this.paused && this.queuedRows <= this.highWater / 2) {
      this.paused = false;
      this.socket()?.resume();
    }
  }

  /**
   * The next item, waiting up to `timeoutMs` for one; 'idle' when none came in time (the caller flushes
   * or checkpoints then). Throws the stream's failure once every item before it was taken.
   */
  async take(timeoutMs: number): Promise<BinlogItem | 'idle' | 'closed'> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // A failure wins over queued items: they are read again after the restart from the checkpoint.
      if (this.failure) throw this.failure;
      const item = this.poll();
      if (item !== undefined) return item;
      if (this.closed) return 'closed';
      if (this.nudged) {
        this.nudged = false;
        return 'idle';
      }
      const wait = deadline - Date.now();
      if (wait <= 0) return 'idle';
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        if (this.timer === undefined || this.timerAt > deadline) {
          clearTimeout(this.timer);
          this.timerAt = deadline;
          this.timer = setTimeout(() => {
            this.timer = undefined;
            this.wake?.();
          }, wait);
        }
      });
      this.wake = undefined;
    }
  }
}

/** The parts of mysql2's connection the binlog stream pauses and resumes. */
export interface SourceConnection {
  pause(): void;
  resume(): void;
  stream: { pause(): void; resume(): void };
  /** While set, mysql2 keeps each packet that arrives (a view of the socket's buffer) instead of handling it. */
  _paused?: boolean;
  /** The packets kept, handled in order by resume(). */
  _paused_packets?: {
    push(packet: { start: number; end: number } | null): unknown;
    shift(): { start: number; end: number } | null | undefined;
  };
}

/**
 * Backpressure in two steps. When the queue of decoded rows is full, decoding pauses but reading does
 * not: mysql2 keeps the packets that arrive (views of the socket's buffers, whose bytes are outside the
 * JavaScript heap; a small object each) and resume() decodes them as soon as the queue has room, so capture
 * does not wait on the server's next send while the queue drains. Once `limitBytes` of packets are kept,
 * the socket pauses too (the server then waits, and memory stays bounded however long Kafka is away), and
 * reads again once half of them are decoded. A connection without those parts of mysql2 is paused whole, as
 * the client's own pause() does.
 */
export class ReadAhead {
  private queue: SourceConnection['_paused_packets'];
  /** Bytes of the packets kept now. */
  bytes = 0;
  /** Whether the socket is paused by this read-ahead (not by the client's own pause()). */
  socketPaused = false;

  constructor(private readonly limitBytes: number) {}

  pause(connection: SourceConnection): void {
    const queue = connection._paused_packets;
    if (queue === undefined || typeof connection._paused !== 'boolean') {
      connection.pause();
      return;
    }
    if (this.queue !== queue) this.watch(connection, queue);
    connection._paused = true;
  }

  private watch(connection: SourceConnection, queue: NonNullable<SourceConnection['_paused_packets']>): void {
    this.queue = queue;
    this.bytes = 0;
    const push = queue.push.bind(queue);
    const shift = queue.shift.bind(queue);
    queue.push = (packet) => {
      const result = push(packet);
      if (packet) this.bytes += packet.end - packet.start;
      if (this.bytes > this.limitBytes && connection._paused === true && !this.socketPaused) {
        this.socketPaused = true;
        connection.stream.pause();
      }
      return result;
    };
    queue.shift = () => {
      const packet = shift();
      // Never below zero: packets kept before the queue was watched were not counted.
      if (packet) this.bytes = Math.max(0, this.bytes - (packet.end - packet.start));
      if (this.socketPaused && this.bytes <= this.limitBytes / 2) {
        this.socketPaused = false;
        connection.stream.resume();
      }
      return packet;
    };
  }
}

function weight(item: BinlogItem): number {
  return item.kind === 'rows' ? Math.max(1, item.rows.length) : 1;
}

function translateError(err: Error, options: BinlogStreamOptions): Error {
  const code = (err as { errno?: number; code?: string }).errno;
  if (code === 1236) {
    return new TidemarkError(
      'SOURCE_MISCONFIGURED',
      `the source no longer has the binlog position tidemark must resume from (${options.binlogFile}:${options.offset}): ${err.message}`,
      {
        cause: err,
        hint: 'the binlog was purged past the checkpoint; nothing was skipped. Restart capture with --resnapshot to take a new consistent snapshot, and keep binlogs longer (binlog_expire_logs_seconds / expire_logs_days)',
      },
    );
  }
  if (err instanceof TidemarkError) return err;
  return new TidemarkError(
    'SOURCE_UNREACHABLE',
    `binlog stream from ${options.host}:${options.port} failed: ${err.message}`,
    {
      cause: err,
    },
  );
}
