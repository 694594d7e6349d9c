// Rebuilding tables at a point in history: choose the newest snapshot at or before it, the change files
// after that snapshot and the Kafka tail not archived yet (the plan), then fold every change up to the
// point into a keyed state (the rebuild). Restores, snapshots and queries all start here.
//
// The point is rounded down to a transaction boundary: a transaction is in when every one of its changes
// is, so the state is the source's after the last transaction committed at or before the point. Changes
// are merged by position, whatever file, partition or Kafka fetch they come from, and a change seen twice
// counts once.

import type { Kafka } from 'kafkajs';
import {
  changeTopic,
  comparePositions,
  describePosition,
  formatPosition,
  parsePosition,
  TidemarkError,
  type ChangeEvent,
  type Logger,
  type ManifestEntry,
  type Position,
  type Row,
  type RowValue,
  type SchemaCatalog,
  type TableCodec,
} from '../core/index.js';
import { ArchiveReader, tableEntries, type Archive } from './archive-reader.js';
import { KeyedState } from './keyed-state.js';
import { committedFrontier, readTail, topicOffsets, type TailEvent, type TailRange } from './kafka-tail.js';
import {
  listSnapshots,
  snapshotFileRef,
  type SnapshotManifest,
  type SnapshotTable,
} from './snapshot-catalog.js';
import type { TargetPoint } from './target-point.js';

export interface KafkaAccess {
  kafka: Kafka;
  catalog: SchemaCatalog;
  topicPrefix: string;
}

export interface PlanRequest {
  at: TargetPoint;
  /** Tables as db.table, each known to the archive. */
  tables: readonly string[];
  /** Read only the archive, not the Kafka tail. */
  archiveOnly: boolean;
  allowGaps: boolean;
  /** Start from snapshots where one fits (false: from the archive's first change). */
  useSnapshots: boolean;
}

export interface PointInfo {
  pos: string;
  tsMs: number;
}

export interface TablePlan {
  table: string;
  topic: string;
  base: { snapshot: SnapshotManifest; table: SnapshotTable } | undefined;
  files: ManifestEntry[];
  tail: TailRange[];
  /** Parts of the history that are missing (refused unless allowGaps). */
  gaps: string[];
  /** What could be restored for this table: from its earliest to its latest known change. */
  window: { first: PointInfo | undefined; last: PointInfo | undefined };
  rows: bigint;
  bytes: bigint;
  tailEvents: bigint;
  /**
   * The newest position every partition's archive is known to reach (undefined: every partition is archived
   * to its end, or nothing bounds it); '' when a partition with data has nothing archived yet.
   */
  frontier: (PointInfo & { file?: ManifestEntry }) | undefined;
}

export interface RestorePlan {
  at: TargetPoint;
  tables: TablePlan[];
  rows: bigint;
  bytes: bigint;
  tailEvents: bigint;
  archiveOnly: boolean;
  allowGaps: boolean;
  /** Set when an archive-only plan had to stop short of the point asked for. */
  clampedFrom: TargetPoint | undefined;
  /** Then: the file whose last change is the point it stops at. */
  frontierFile: ManifestEntry | undefined;
}

function describeWindow(w: TablePlan['window']): string {
  if (!w.first || !w.last) return 'nothing is archived yet';
  const at = (p: PointInfo) =>
    `${new Date(p.tsMs).toISOString()} (position ${describePosition(parsePosition(p.pos))})`;
  return `from ${at(w.first)} to ${at(w.last)}`;
}

/** Whether a snapshot can stand for the state at the target: everything in it is at or before the target. */
function snapshotFits(s: SnapshotManifest, at: TargetPoint): boolean {
  if (at.kind === 'latest') return true;
  if (at.kind === 'position') return s.pos <= formatPosition(at.pos);
  return Number(s.ts_ms) <= at.ms;
}

export async function planRestore(
  archive: Archive,
  kafka: KafkaAccess | undefined,
  req: PlanRequest,
): Promise<RestorePlan> {
  const snapshots = req.useSnapshots ? await listSnapshots(archive) : [];
  const tables: TablePlan[] = [];
  for (const table of req.tables) {
    tables.push(await planTable(archive, kafka, req, table, snapshots));
  }
  const sum = (f: (t: TablePlan) => bigint) => tables.reduce((n, t) => n + f(t), 0n);
  const archiveOnly = req.archiveOnly || !kafka;
  let at = req.at;
  let clampedFrom: TargetPoint | undefined;
  let frontierFile: ManifestEntry | undefined;
  if (!kafka) {
    // Without the Kafka tail the state is only consistent up to where every partition's archive reaches.
    const frontier = tables
      .map((t) => t.frontier)
      .filter((f) => f !== undefined)
      .reduce<TablePlan['frontier']>((a, b) => (a === undefined || b.pos < a.pos ? b : a), undefined);
    if (frontier?.pos === '') {
      const table = tables.find((t) => t.frontier?.pos === '')?.table;
      throw new TidemarkError(
        'OUT_OF_WINDOW',
        `${table} has changes in Kafka that are not archived at all yet`,
        {
          hint: 'wait for tidemark tier --only cold to archive them, or restore with the Kafka tail (without --archive-only)',
        },
      );
    }
    const beyond =
      frontier &&
      (at.kind === 'latest' ||
        (at.kind === 'position' && formatPosition(at.pos) > frontier.pos) ||
        (at.kind === 'time' && at.ms > frontier.tsMs));
    if (frontier && beyond) {
      clampedFrom = at;
      frontierFile = frontier.file;
      at = {
        kind: 'position',
        pos: parsePosition(frontier.pos),
        text: `${describePosition(parsePosition(frontier.pos))} (the newest point archived on every partition)`,
      };
    }
  }
  return {
    at,
    tables,
    rows: sum((t) => t.rows),
    bytes: sum((t) => t.bytes),
    tailEvents: sum((t) => t.tailEvents),
    archiveOnly,
    allowGaps: req.allowGaps,
    clampedFrom,
    frontierFile,
  };
}

async function planTable(
  archive: Archive,
  kafka: KafkaAccess | undefined,
  req: PlanRequest,
  table: string,
  snapshots: SnapshotManifest[],
): Promise<TablePlan> {
  const [db = '', name = ''] = table.split(/\.(.*)/s);
  const topic = kafka ? changeTopic(kafka.topicPrefix, db, name) : '';
  const entries = await tableEntries(archive, table);
  const withTable = snapshots
    .map((snapshot) => ({ snapshot, table: snapshot.tables.find((t) => t.table === table) }))
    .filter((s): s is { snapshot: SnapshotManifest; table: SnapshotTable } => s.table !== undefined);
  const base = withTable.filter((s) => snapshotFits(s.snapshot, req.at)).at(-1);
  const basePos = base?.snapshot.pos;
  // Exactly a snapshot's own position: the snapshot is the state, no change is read (so a snapshot older than
  // the change files retention kept still restores, to its point). Not by time: changes of the same second
  // may follow the snapshot's last one.
  const exact =
    base !== undefined && req.at.kind === 'position' && formatPosition(req.at.pos) === base.snapshot.pos;

  const partitions = new Map<number, ManifestEntry[]>();
  for (const e of entries) {
    const list = partitions.get(e.partition) ?? [];
    list.push(e);
    partitions.set(e.partition, list);
  }
  const offsets: Map<number, { low: bigint; high: bigint }> = kafka
    ? await topicOffsets(kafka.kafka, topic)
    : new Map<number, { low: bigint; high: bigint }>();
  for (const p of offsets.keys()) if (!partitions.has(p)) partitions.set(p, []);

  const files: ManifestEntry[] = [];
  const tail: TailRange[] = [];
  const gaps: string[] = [];
  let complete = true;
  let frontier: TablePlan['frontier'];
  for (const [partition, list] of [...partitions].sort((a, b) => a[0] - b[0])) {
    const start = basePos === undefined ? 0 : list.findIndex((e) => e.last_pos > basePos);
    const chosen = exact || start < 0 ? [] : list.slice(start);
    const where = `${table} partition ${partition}`;
    if ((list[0]?.first_offset ?? 0n) !== 0n) complete = false;
    const first = chosen[0];
    if (first && first.first_offset !== 0n) {
      const before = list[start - 1];
      const joined =
        (before && before.last_offset + 1n === first.first_offset) ||
        (basePos !== undefined && first.first_pos <= basePos);
      if (!joined) {
        gaps.push(
          `${where}: offsets ${before ? before.last_offset + 1n : 0n}–${first.first_offset - 1n} are not in the archive`,
        );
      }
    }
    for (let i = 1; i < chosen.length; i++) {
      const prev = chosen[i - 1] as ManifestEntry;
      const cur = chosen[i] as ManifestEntry;
      if (cur.first_offset !== prev.last_offset + 1n) {
        gaps.push(
          cur.first_offset > prev.last_offset + 1n
            ? `${where}: offsets ${prev.last_offset + 1n}–${cur.first_offset - 1n} are missing between ${prev.object_key} and ${cur.object_key}`
            : `${where}: ${prev.object_key} and ${cur.object_key} overlap`,
        );
      }
    }
    files.push(...chosen);
    const archivedEnd = (list.at(-1)?.last_offset ?? -1n) + 1n;
    const range = offsets.get(partition);
    const last = list.at(-1);
    if (!range || range.high > archivedEnd) {
      // Not known to be archived to its end: the archive of this partition reaches its last file.
      const reach = last
        ? { pos: last.last_pos, tsMs: Number(last.max_ts_ms), file: last }
        : { pos: '', tsMs: 0 };
      if ((last || range) && (!frontier || reach.pos < frontier.pos)) frontier = reach;
    }
    if (range && range.high > archivedEnd && !exact) {
      if (range.low > archivedEnd) {
        gaps.push(
          `${where}: offsets ${archivedEnd}–${range.low - 1n} left Kafka (retention) before they were archived`,
        );
      }
      const from = range.low > archivedEnd ? range.low : archivedEnd;
      tail.push({ partition, from, to: range.high });
    }
  }

  // The restorable window: from the earliest snapshot or the archive's first change, to the latest change.
  const firstFiles = [...partitions.values()].map((l) => l[0]).filter((e): e is ManifestEntry => !!e);
  const archiveStart =
    (complete || req.allowGaps) && firstFiles.length > 0
      ? firstFiles.reduce((a, b) => (a.first_pos <= b.first_pos ? a : b))
      : undefined;
  const earliestSnapshot = withTable[0]?.snapshot;
  let first: PointInfo | undefined =
    archiveStart && (!earliestSnapshot || archiveStart.first_pos <= earliestSnapshot.pos)
      ? { pos: archiveStart.first_pos, tsMs: Number(archiveStart.min_ts_ms) }
      : earliestSnapshot
        ? { pos: earliestSnapshot.pos, tsMs: Number(earliestSnapshot.ts_ms) }
        : undefined;
  const lastFile = entries.reduce<ManifestEntry | undefined>(
    (a, b) => (a === undefined || b.last_pos > a.last_pos ? b : a),
    undefined,
  );
  let last: PointInfo | undefined = lastFile
    ? { pos: lastFile.last_pos, tsMs: Number(lastFile.max_ts_ms) }
    : undefined;
  const latestSnapshot = withTable.at(-1)?.snapshot;
  if (latestSnapshot && (!last || latestSnapshot.pos > last.pos)) {
    last = { pos: latestSnapshot.pos, tsMs: Number(latestSnapshot.ts_ms) };
  }
  if (!first && last) first = last;
  const window = { first, last };

  if (gaps.length > 0 && !req.allowGaps) {
    throw new TidemarkError('ARCHIVE_GAP', `the history of ${table} has gaps:\n  ${gaps.join('\n  ')}`, {
      hint: 'restore to a point before the gap, or accept the loss with --allow-gaps',
    });
  }
  if (first && req.at.kind !== 'latest') {
    const early =
      req.at.kind === 'position' ? formatPosition(req.at.pos) < first.pos : req.at.ms < first.tsMs;
    if (early && !base) {
      throw new TidemarkError(
        'OUT_OF_WINDOW',
        `${req.at.text} is before the earliest restorable point of ${table}; it can be restored ${describeWindow(window)}`,
        { hint: 'pick a point inside that window' },
      );
    }
  }
  if (!first && tail.length === 0) {
    throw new TidemarkError('OUT_OF_WINDOW', `${table} has nothing archived yet and nothing in Kafka`, {
      hint: 'check that tidemark tier --only cold runs for this table',
    });
  }

  const baseRows = base?.table.rows ?? 0n;
  const baseBytes = base?.table.files.reduce((n, f) => n + f.bytes, 0n) ?? 0n;
  return {
    table,
    topic,
    base,
    files,
    tail,
    gaps,
    window,
    rows: baseRows + files.reduce((n, f) => n + f.rows, 0n),
    bytes: baseBytes + files.reduce((n, f) => n + f.bytes, 0n),
    tailEvents: tail.reduce((n, r) => n + (r.to - r.from), 0n),
    frontier,
  };
}

/** One table folded to the point: its state and the schema version its rows are given in. */
export interface RebuiltTable {
  table: string;
  state: KeyedState;
  /** Codec of the newest schema version at the point (rows of older versions are mapped onto it). */
  codec: TableCodec;
  events: number;
}

export interface RebuildResult {
  tables: RebuiltTable[];
  /** The last change included (the exact point restored to), over all tables. */
  restoredTo: { pos: Position; tsMs: number } | undefined;
  /** The latest source time among the changes included (times need not grow with positions). */
  maxTsMs: number;
  events: number;
  /** Of those, how many came from the Kafka tail rather than the archive. */
  fromKafka: number;
  bytes: number;
}

export interface RebuildOptions {
  maxKeys: number;
  tmpDir?: string;
  logger: Logger;
  /** Called as events are folded, with the running count of events and bytes read. */
  progress?: (events: number, bytes: number) => void;
  signal?: AbortSignal;
}

interface Cut {
  /** Changes at or after this position are out. */
  limit: Position | undefined;
  /** The transaction the point falls into, whose earlier changes are out too. */
  openTx: string | null | undefined;
}

export async function rebuild(
  archive: Archive,
  kafka: KafkaAccess | undefined,
  plan: RestorePlan,
  o: RebuildOptions,
): Promise<RebuildResult> {
  const reader = new ArchiveReader(archive);
  const cache = new Map<string, { codec: TableCodec; events: ChangeEvent[] }>();
  // Archive-only with Kafka at hand (snapshots): the tail is read only to see where the archive ends.
  const tails = new Map<string, TailEvent[]>();
  if (kafka) {
    for (const t of plan.tables) {
      if (t.tail.length === 0) continue;
      tails.set(t.table, await readTail({ ...kafka, topic: t.topic, ranges: t.tail, logger: o.logger }));
      // Retention may have removed the start of a range between the plan and the read: Kafka then starts
      // the consumer further on, and the missing changes would go unnoticed.
      const now = await topicOffsets(kafka.kafka, t.topic);
      for (const r of t.tail) {
        const low = now.get(r.partition)?.low ?? 0n;
        if (low > r.from && !plan.allowGaps) {
          throw new TidemarkError(
            'ARCHIVE_GAP',
            `${t.table} partition ${r.partition}: offsets ${r.from}–${low - 1n} left Kafka (retention) while the restore read them, before they were archived`,
            { hint: 'restore to an earlier point, or accept the loss with --allow-gaps' },
          );
        }
      }
    }
  }
  // Nothing past the newest capture checkpoint: that is a source transaction still being sent.
  const committed = kafka ? await committedFrontier(kafka.kafka, kafka.topicPrefix, o.logger) : undefined;
  const cut = await findCut(plan, reader, cache, tails, committed);
  let fromKafka = 0;
  o.logger.debug(
    { limit: cut.limit && formatPosition(cut.limit), openTx: cut.openTx },
    'restore: cut at transaction boundary',
  );

  const totals = { events: 0, maxTsMs: 0, bytes: 0 };
  let restoredTo: RebuildResult['restoredTo'];
  const out: RebuiltTable[] = [];
  let current: KeyedState | undefined;
  try {
    for (const t of plan.tables) {
      const state = new KeyedState({ maxKeys: o.maxKeys, ...(o.tmpDir ? { tmpDir: o.tmpDir } : {}) });
      current = state;
      const basePos = t.base ? parsePosition(t.base.snapshot.pos) : undefined;
      const folder = new Folder(state, {
        cut,
        basePos,
        at: plan.at.kind === 'position' ? plan.at.pos : undefined,
      });
      const progress = () => o.progress?.(totals.events + folder.events, totals.bytes + reader.bytesRead);
      for (const f of t.base?.table.files ?? []) {
        o.signal?.throwIfAborted();
        await reader.forEach(snapshotFileRef(t.base!.table, f), (e, codec) => folder.fold(codec, e, true));
        progress();
      }
      for (const f of t.files) {
        o.signal?.throwIfAborted();
        if (cut.limit && f.first_pos >= formatPosition(cut.limit)) continue;
        if (cache.has(f.object_key)) continue;
        await reader.forEach(f, (e, codec) => folder.fold(codec, e, false));
        progress();
      }
      for (const f of t.files) {
        const cached = cache.get(f.object_key);
        if (!cached) continue;
        cache.delete(f.object_key);
        for (const e of cached.events) folder.fold(cached.codec, e, false);
      }
      if (t.base) folder.reached(basePos as Position, Number(t.base.snapshot.ts_ms));
      let fromTail = 0;
      if (!plan.archiveOnly) {
        const before = folder.events;
        for (const { codec, event } of tails.get(t.table) ?? []) folder.fold(codec, event, false);
        fromTail = folder.events - before;
        fromKafka += fromTail;
      }
      progress();
      let codec = folder.codec;
      if (!codec) {
        // Nothing at or before the point: the table's schema still comes from its earliest file.
        const first = t.files[0];
        if (first) codec = (await reader.events(first)).codec;
        else if (t.base)
          codec = (await reader.events(snapshotFileRef(t.base.table, t.base.table.files[0] as never))).codec;
        else {
          const tail = tails.get(t.table)?.[0];
          if (!tail)
            throw new TidemarkError(
              'OUT_OF_WINDOW',
              `${t.table} has no change at or before ${plan.at.kind === 'latest' ? 'now' : plan.at.text}`,
            );
          codec = tail.codec;
        }
      }
      out.push({ table: t.table, state, codec, events: folder.events });
      totals.events += folder.events;
      totals.maxTsMs = Math.max(totals.maxTsMs, folder.maxTsMs);
      if (folder.restoredTo && (!restoredTo || comparePositions(folder.restoredTo.pos, restoredTo.pos) > 0)) {
        restoredTo = folder.restoredTo;
      }
    }
  } catch (err) {
    for (const t of out) t.state.discard();
    current?.discard();
    throw err;
  }
  return {
    tables: out,
    restoredTo,
    maxTsMs: totals.maxTsMs,
    events: totals.events,
    fromKafka,
    bytes: reader.bytesRead,
  };
}

interface FoldBounds {
  cut: Cut;
  /** Changes at or before the base snapshot's position are in it already. */
  basePos: Position | undefined;
  /** A position target: nothing after it. */
  at: Position | undefined;
}

/** Folds changes into a state within the bounds of a rebuild, keeping what the result reports. */
class Folder {
  events = 0;
  maxTsMs = 0;
  /** Codec of the newest change folded: the schema version the table's rows are given in. */
  codec: TableCodec | undefined;
  restoredTo: { pos: Position; tsMs: number } | undefined;

  constructor(
    readonly state: KeyedState,
    private readonly bounds: FoldBounds,
  ) {}

  fold(codec: TableCodec, e: ChangeEvent, fromBase: boolean): void {
    const { cut, basePos, at } = this.bounds;
    if (!fromBase) {
      if (basePos && comparePositions(e.pos, basePos) <= 0) return;
      if (cut.limit && comparePositions(e.pos, cut.limit) >= 0) return;
      if (at && comparePositions(e.pos, at) > 0) return;
      if (cut.openTx !== undefined && cut.openTx !== null && e.tx === cut.openTx) return;
    }
    applyChange(this.state, codec, e);
    this.events++;
    if (e.tsMs > this.maxTsMs) this.maxTsMs = e.tsMs;
    if (!this.restoredTo || comparePositions(e.pos, this.restoredTo.pos) > 0) {
      this.restoredTo = { pos: e.pos, tsMs: e.tsMs };
      this.codec = codec;
    }
  }

  /** The state stands for this position (a snapshot does, even where the table had no change just then). */
  reached(pos: Position, tsMs: number): void {
    if (!this.restoredTo || comparePositions(pos, this.restoredTo.pos) > 0) this.restoredTo = { pos, tsMs };
    if (tsMs > this.maxTsMs) this.maxTsMs = tsMs;
  }
}

function keyPart(v: RowValue | undefined): string {
  if (v === null || v === undefined) return '\u0000';
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return `0x${v.toString('hex')}`;
  return String(v);
}

/**
 * The state's key of a row: its primary-key values as text, so a key keeps its identity when a schema
 * version changes the column's type (INT → BIGINT gives 5 then 5n).
 */
export function stateKey(codec: TableCodec, row: Row): string {
  const columns = codec.keyColumns;
  if (columns.length === 1) return keyPart(row[columns[0] as string]);
  return JSON.stringify(columns.map((c) => keyPart(row[c])));
}

/** Folds one change into the state: the key's row after it, or its removal. */
export function applyChange(state: KeyedState, codec: TableCodec, e: ChangeEvent): void {
  if (e.op === 'd') {
    const key = e.before ? stateKey(codec, e.before) : e.key;
    state.offer(key, { pos: e.pos, tsMs: e.tsMs, op: e.op, tx: e.tx, row: null, version: codec.version });
    return;
  }
  const key = e.after ? stateKey(codec, e.after) : e.key;
  if (e.op === 'u' && e.before) {
    // An update that changed the primary key removes the old key.
    const old = stateKey(codec, e.before);
    if (old !== key) {
      state.offer(old, { pos: e.pos, tsMs: e.tsMs, op: e.op, tx: e.tx, row: null, version: codec.version });
    }
  }
  state.offer(key, { pos: e.pos, tsMs: e.tsMs, op: e.op, tx: e.tx, row: e.after, version: codec.version });
}

/**
 * Where the point cuts the history: the first change past it (by position, or by source time for a time
 * target), and the transaction that change belongs to. Only the files that can hold that first change are
 * read: per partition, the first file reaching past the point, and the Kafka tail.
 */
async function findCut(
  plan: RestorePlan,
  reader: ArchiveReader,
  cache: Map<string, { codec: TableCodec; events: ChangeEvent[] }>,
  tails: Map<string, TailEvent[]>,
  committed: Position | undefined,
): Promise<Cut> {
  const at = plan.at;
  let first: ChangeEvent | undefined;
  const earliest = (e: ChangeEvent) => {
    if (!first || comparePositions(e.pos, first.pos) < 0) first = e;
  };
  if (plan.archiveOnly) {
    // Nothing at or after the first change not archived yet can be in the state.
    for (const t of plan.tables) {
      const seen = new Set<number>();
      for (const { partition, event } of tails.get(t.table) ?? []) {
        if (seen.has(partition)) continue;
        seen.add(partition);
        earliest(event);
      }
    }
  }
  const committedText = committed && formatPosition(committed);
  const pastTarget =
    at.kind === 'position'
      ? (e: ChangeEvent) => comparePositions(e.pos, at.pos) > 0
      : at.kind === 'time'
        ? (e: ChangeEvent) => e.tsMs > at.ms
        : () => false;
  const fileReachesTarget =
    at.kind === 'position'
      ? (f: ManifestEntry) => f.last_pos > formatPosition(at.pos)
      : at.kind === 'time'
        ? (f: ManifestEntry) => Number(f.max_ts_ms) > at.ms
        : () => false;
  const past = (e: ChangeEvent) =>
    pastTarget(e) || (committed !== undefined && comparePositions(e.pos, committed) > 0);
  const fileReachesPast = (f: ManifestEntry) =>
    fileReachesTarget(f) || (committedText !== undefined && f.last_pos > committedText);
  for (const t of plan.tables) {
    const seen = new Set<number>();
    for (const f of t.files) {
      if (seen.has(f.partition) || !fileReachesPast(f)) continue;
      seen.add(f.partition);
      const read = await reader.events(f);
      cache.set(f.object_key, read);
      for (const e of read.events) if (past(e)) earliest(e);
    }
    for (const { event } of tails.get(t.table) ?? []) if (past(event)) earliest(event);
  }
  // An archive-only restore clamped to the newest point every partition reaches: that point's transaction
  // may go on in a partition whose archive ends before it, so it is left out whole.
  if (plan.clampedFrom && plan.frontierFile) {
    const read = cache.get(plan.frontierFile.object_key) ?? (await reader.events(plan.frontierFile));
    cache.set(plan.frontierFile.object_key, read);
    const last = read.events.reduce<ChangeEvent | undefined>(
      (a, e) => (a === undefined || comparePositions(e.pos, a.pos) > 0 ? e : a),
      undefined,
    );
    if (
      last &&
      last.tx !== null &&
      (!first || first.tx === last.tx || comparePositions(first.pos, last.pos) > 0)
    ) {
      return { limit: first?.pos, openTx: last.tx };
    }
  }
  const cut: ChangeEvent | undefined = first;
  return cut ? { limit: cut.pos, openTx: cut.tx } : { limit: undefined, openTx: undefined };
}
