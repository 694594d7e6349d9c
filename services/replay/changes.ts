// `tidemark changes`: the change events of some tables in a window, grouped by source transaction, so an
// operator can find the bad transaction and restore to the position just before it.

import {
  comparePositions,
  formatPosition,
  makePosition,
  positionThrough,
  TidemarkError,
  type ChangeEvent,
  type Op,
  type Row,
} from '../core/index.js';
import { ArchiveReader, openArchive } from './archive-reader.js';
import { planRestore, type KafkaAccess } from './rebuild.js';
import { readTail } from './kafka-tail.js';
import { resolveTables, whereFilters, withKafka, type ReplayContext } from './restore.js';
import { parseTargetPoint, type TargetPoint } from './target-point.js';
import { parseWhere } from './where.js';

export interface ChangesRequest {
  tables: readonly string[];
  from: string | undefined;
  to: string | undefined;
  where: readonly string[];
  ops: readonly Op[];
  archiveOnly: boolean;
  /** Transactions listed at most (the count is always complete). */
  limit: number;
}

export interface TransactionGroup {
  tx: string | null;
  first: string;
  last: string;
  tsMs: number;
  counts: Record<Op, number>;
  tables: string[];
  events: ChangeEvent[];
  /** `--at` for a restore to just before this transaction. */
  restoreBefore: string;
}

export interface ChangesResult {
  transactions: TransactionGroup[];
  totalTransactions: number;
  totalEvents: number;
  truncated: boolean;
}

/** The sortable position just before a change: everything ending before it. */
export function positionBefore(e: ChangeEvent): string {
  const p = e.pos;
  if (p.row > 0) return formatPosition(makePosition(p.file, p.offset, p.row - 1));
  return formatPosition(positionThrough(p.file, Math.max(0, p.offset - 1)));
}

function inWindow(from: TargetPoint | undefined, to: TargetPoint | undefined) {
  return (e: ChangeEvent): boolean => {
    if (from?.kind === 'time' && e.tsMs < from.ms) return false;
    if (from?.kind === 'position' && comparePositions(e.pos, from.pos) < 0) return false;
    if (to?.kind === 'time' && e.tsMs > to.ms) return false;
    if (to?.kind === 'position' && comparePositions(e.pos, to.pos) > 0) return false;
    return true;
  };
}

export async function listChanges(ctx: ReplayContext, req: ChangesRequest): Promise<ChangesResult> {
  const archive = openArchive(ctx.config);
  const from = req.from === undefined ? undefined : parseTargetPoint(req.from, ctx.nowMs);
  const to = req.to === undefined ? undefined : parseTargetPoint(req.to, ctx.nowMs);
  if (from?.kind === 'latest')
    throw new TidemarkError('BAD_ARGUMENT', '--from latest leaves nothing to list');
  const clauses = req.where.map(parseWhere);
  const keep = inWindow(from, to);
  const events: { table: string; e: ChangeEvent }[] = [];
  await withKafka(ctx, req.archiveOnly, async (kafka: KafkaAccess | undefined) => {
    const tables = await resolveTables(archive, kafka, req.tables);
    const plan = await planRestore(archive, kafka, {
      at: to ?? { kind: 'latest' },
      tables,
      archiveOnly: req.archiveOnly,
      allowGaps: true,
      useSnapshots: false,
    });
    const reader = new ArchiveReader(archive);
    for (const t of plan.tables) {
      const files = t.files.filter((f) => {
        if (from?.kind === 'time' && Number(f.max_ts_ms) < from.ms) return false;
        if (from?.kind === 'position' && f.last_pos < formatPosition(from.pos)) return false;
        if (to?.kind === 'time' && Number(f.min_ts_ms) > to.ms) return false;
        if (to?.kind === 'position' && f.first_pos > formatPosition(to.pos)) return false;
        return true;
      });
      let filter: ((row: Row) => boolean) | undefined;
      const matches = (codecColumns: readonly { name: string }[], e: ChangeEvent) => {
        if (clauses.length === 0) return true;
        filter ??= whereFilters(clauses, [{ table: t.table, columns: codecColumns }]).get(t.table);
        return (e.after !== null && filter!(e.after)) || (e.before !== null && filter!(e.before));
      };
      const take = (columns: readonly { name: string }[], e: ChangeEvent) => {
        if (!keep(e) || (req.ops.length > 0 && !req.ops.includes(e.op)) || !matches(columns, e)) return;
        events.push({ table: t.table, e });
      };
      for (const f of files) {
        const { codec, events: list } = await reader.events(f);
        for (const e of list) take(codec.table.columns, e);
      }
      if (kafka && !plan.archiveOnly && t.tail.length > 0) {
        for (const { codec, event } of await readTail({
          ...kafka,
          topic: t.topic,
          ranges: t.tail,
          logger: ctx.logger,
        })) {
          take(codec.table.columns, event);
        }
      }
    }
  });
  // Deduplicated by position, in position order, grouped by transaction.
  const unique = new Map<string, { table: string; e: ChangeEvent }>();
  for (const x of events) unique.set(`${x.table}@${formatPosition(x.e.pos)}`, x);
  const ordered = [...unique.values()].sort((a, b) => comparePositions(a.e.pos, b.e.pos));
  const groups: TransactionGroup[] = [];
  for (const { table, e } of ordered) {
    let g = groups.at(-1);
    if (!g || g.tx !== e.tx || e.tx === null) {
      g = {
        tx: e.tx,
        first: formatPosition(e.pos),
        last: formatPosition(e.pos),
        tsMs: e.tsMs,
        counts: { c: 0, u: 0, d: 0, r: 0 },
        tables: [],
        events: [],
        restoreBefore: positionBefore(e),
      };
      groups.push(g);
    }
    g.last = formatPosition(e.pos);
    g.tsMs = Math.max(g.tsMs, e.tsMs);
    g.counts[e.op]++;
    if (!g.tables.includes(table)) g.tables.push(table);
    g.events.push(e);
  }
  return {
    transactions: groups.slice(0, req.limit),
    totalTransactions: groups.length,
    totalEvents: ordered.length,
    truncated: groups.length > req.limit,
  };
}
