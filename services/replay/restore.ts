// `tidemark restore`: the chosen tables as they were at a point in time, written to a new place.

import {
  createKafka,
  describePosition,
  formatPosition,
  globToRegExp,
  parsePosition,
  listArchivedTables,
  SchemaCatalog,
  TidemarkError,
  type Config,
  type Logger,
  type Row,
} from '../core/index.js';
import { currentActor, writeAudit } from './audit.js';
import { changeTopics, topicOffsets } from './kafka-tail.js';
import { openArchive, type Archive } from './archive-reader.js';
import { planRestore, rebuild, type KafkaAccess, type RebuildResult, type RestorePlan } from './rebuild.js';
import { parseTargetPoint, type TargetPoint } from './target-point.js';
import { openTarget } from './targets/open-target.js';
import { projectRow, type RestoredRow, type RestoreTarget } from './targets/target.js';
import type { DirFormat } from './targets/dir-target.js';
import { compileWhere, parseWhere, type WhereClause } from './where.js';

export interface RestoreRequest {
  /** --at as given (time, position, "15 minutes ago", latest). */
  at: string;
  /** db.table names or patterns; empty: every archived table. */
  tables: readonly string[];
  where: readonly string[];
  /** mongodb://…/<db>, mysql://…/<db> or dir:<path>; undefined: a new MongoDB database on tier.hot's server. */
  to: string | undefined;
  format: DirFormat;
  force: boolean;
  allowGaps: boolean;
  archiveOnly: boolean;
  /** Keys held in memory per table before the state spills to disk. */
  maxKeys: number;
  tmpDir?: string;
  /** Why, for the audit log in the archive (--reason). */
  reason?: string;
}

export interface Progress {
  start(total: number): void;
  update(events: number, bytes: number): void;
  phase(name: string): void;
  stop(): void;
}

export interface RestoreSummary {
  at: string;
  target: string;
  position: string | null;
  positionTime: string | null;
  tables: { table: string; rows: number; events: number; location: string; keptAside?: string }[];
  events: number;
  /** Changes read from the Kafka tail (not archived yet). */
  fromKafka: number;
  /** Set when an archive-only restore stopped short of the point asked for (where the archive ends). */
  stoppedShortOf: string | null;
  bytesRead: number;
  seconds: number;
  eventsPerSecond: number;
}

export interface ReplayContext {
  config: Config;
  logger: Logger;
  progress?: Progress;
  nowMs?: number;
  signal?: AbortSignal;
}

const BATCH = 2000;

/**
 * Tables with a change topic in Kafka that has ever held a change (some may have nothing archived yet). A
 * captured table that never had a row has a topic but no change, and nothing to restore or snapshot.
 */
async function kafkaTables(kafka: KafkaAccess | undefined): Promise<string[]> {
  if (!kafka) return [];
  const head = `${kafka.topicPrefix}.`;
  const used: string[] = [];
  for (const topic of await changeTopics(kafka.kafka, kafka.topicPrefix)) {
    const offsets = await topicOffsets(kafka.kafka, topic);
    if ([...offsets.values()].some((o) => o.high > 0n)) used.push(topic.slice(head.length));
  }
  return used;
}

/** Resolves table names and patterns against what the archive (and Kafka) holds. */
export async function resolveTables(
  archive: Archive,
  kafka: KafkaAccess | undefined,
  asked: readonly string[],
): Promise<string[]> {
  const known = [
    ...new Set([...(await listArchivedTables(archive.store, archive.prefix)), ...(await kafkaTables(kafka))]),
  ].sort();
  if (asked.length === 0) {
    if (known.length === 0) {
      throw new TidemarkError('OUT_OF_WINDOW', `the archive at ${archive.store.url} holds no tables yet`);
    }
    return known;
  }
  const chosen = new Set<string>();
  for (const name of asked
    .flatMap((a) => a.split(','))
    .map((a) => a.trim())
    .filter((a) => a)) {
    const re = globToRegExp(name);
    const hits = known.filter((t) => re.test(t));
    if (hits.length === 0) {
      throw new TidemarkError('BAD_ARGUMENT', `no table ${name} in the archive at ${archive.store.url}`, {
        hint: known.length > 0 ? `known tables: ${known.join(', ')}` : 'the archive holds no tables yet',
      });
    }
    hits.forEach((t) => chosen.add(t));
  }
  return [...chosen];
}

export async function withKafka<T>(
  ctx: ReplayContext,
  archiveOnly: boolean,
  run: (kafka: KafkaAccess | undefined) => Promise<T>,
): Promise<T> {
  const config = ctx.config.kafka;
  if (!config || archiveOnly) return run(undefined);
  const kafka = createKafka(config, ctx.logger, '-restore');
  const catalog = new SchemaCatalog(kafka, config.topicPrefix, ctx.logger);
  try {
    return await run({ kafka, catalog, topicPrefix: config.topicPrefix });
  } finally {
    await catalog.close();
  }
}

export async function planFor(
  ctx: ReplayContext,
  req: RestoreRequest,
): Promise<{ plan: RestorePlan; at: TargetPoint }> {
  const archive = openArchive(ctx.config);
  const at = parseTargetPoint(req.at, ctx.nowMs);
  const plan = await withKafka(ctx, req.archiveOnly, async (kafka) =>
    planRestore(archive, kafka, {
      at,
      tables: await resolveTables(archive, kafka, req.tables),
      archiveOnly: req.archiveOnly,
      allowGaps: req.allowGaps,
      useSnapshots: true,
    }),
  );
  return { plan, at };
}

/** The plan as a person reads it: where the restore starts, what it reads, and a guess at the time. */
export function describePlan(plan: RestorePlan, to: string): string {
  const lines: string[] = [];
  const at = plan.at.kind === 'latest' ? 'the latest change' : plan.at.text;
  lines.push(`restore to ${at} into ${to}`);
  for (const t of plan.tables) {
    lines.push(`\n${t.table}`);
    lines.push(
      t.base
        ? `  start: snapshot ${t.base.snapshot.id} at ${describePosition(parsePosition(t.base.snapshot.pos))} (${new Date(Number(t.base.snapshot.ts_ms)).toISOString()}), ${t.base.table.rows} rows in ${t.base.table.files.length} files`
        : '  start: the first archived change (initial snapshot of capture)',
    );
    const parts = new Map<number, typeof t.files>();
    for (const f of t.files) parts.set(f.partition, [...(parts.get(f.partition) ?? []), f]);
    for (const [p, files] of parts) {
      const rows = files.reduce((n, f) => n + f.rows, 0n);
      const bytes = files.reduce((n, f) => n + f.bytes, 0n);
      lines.push(
        `  partition ${p}: ${files.length} change files, offsets ${files[0]?.first_offset}–${files.at(-1)?.last_offset}, ${rows} events, ${formatBytes(Number(bytes))}`,
      );
    }
    for (const r of t.tail) {
      lines.push(
        plan.archiveOnly
          ? `  partition ${r.partition}: offsets ${r.from}–${r.to - 1n} are in Kafka only and are left out (--archive-only)`
          : `  partition ${r.partition}: Kafka ${t.topic} offsets ${r.from}–${r.to - 1n} (${r.to - r.from} events not archived yet)`,
      );
    }
    for (const g of t.gaps) lines.push(`  GAP: ${g}`);
    if (t.window.first && t.window.last) {
      lines.push(
        `  restorable: ${new Date(t.window.first.tsMs).toISOString()} … ${new Date(t.window.last.tsMs).toISOString()}`,
      );
    }
  }
  // Reading and folding runs at a few hundred thousand events a second here; writing depends on the target.
  const events = Number(plan.rows + (plan.archiveOnly ? 0n : plan.tailEvents));
  lines.push(
    `\ntotal: ${events} events, ${formatBytes(Number(plan.bytes))} to read; estimate ${Math.max(1, Math.round(events / 200_000))} s`,
  );
  return lines.join('\n');
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** Compiles --where per table: a clause applies to every table with that column, and to at least one. */
export function whereFilters(
  clauses: readonly WhereClause[],
  tables: readonly { table: string; columns: readonly { name: string }[] }[],
): Map<string, (row: Row) => boolean> {
  for (const w of clauses) {
    if (!tables.some((t) => t.columns.some((c) => c.name === w.column))) {
      const list = tables.map((t) => `${t.table} (${t.columns.map((c) => c.name).join(', ')})`).join('; ');
      throw new TidemarkError(
        'BAD_ARGUMENT',
        `--where "${w.text}": no restored table has a column "${w.column}"`,
        {
          hint: `columns: ${list}`,
        },
      );
    }
  }
  const out = new Map<string, (row: Row) => boolean>();
  for (const t of tables) {
    const mine = clauses.filter((w) => t.columns.some((c) => c.name === w.column));
    out.set(t.table, compileWhere(mine, t.columns as never, t.table));
  }
  return out;
}

/** Every restore, done or failed, is recorded in the archive's audit log (a read-only archive only warns). */
export async function runRestore(ctx: ReplayContext, req: RestoreRequest): Promise<RestoreSummary> {
  const archive = openArchive(ctx.config);
  let summary: RestoreSummary | undefined;
  let failure: unknown;
  try {
    summary = await restoreOnce(ctx, req);
    return summary;
  } catch (err) {
    failure = err;
    throw err;
  } finally {
    await writeAudit(archive, {
      action: 'restore',
      actor: currentActor(),
      reason: req.reason ?? '',
      outcome: summary ? 'done' : 'failed',
      ...(failure instanceof Error ? { error: failure.message } : {}),
      details: {
        at: req.at,
        tables: summary
          ? summary.tables.map((t) => ({ table: t.table, rows: t.rows, location: t.location }))
          : req.tables,
        where: req.where,
        target: summary?.target ?? req.to ?? null,
        position: summary?.position ?? null,
        force: req.force,
      },
    }).catch((err: unknown) =>
      ctx.logger.warn(
        { err },
        'restore: could not record it in the archive audit log (is the archive read-only?)',
      ),
    );
  }
}

async function restoreOnce(ctx: ReplayContext, req: RestoreRequest): Promise<RestoreSummary> {
  const started = Date.now();
  const clauses = req.where.map(parseWhere);
  const archive = openArchive(ctx.config);
  const at = parseTargetPoint(req.at, ctx.nowMs);
  const target: RestoreTarget = openTarget(ctx.config, req.to, req.format, at, started);
  let rebuilt: RebuildResult | undefined;
  try {
    let clampedFrom: TargetPoint | undefined;
    const result: RebuildResult = await withKafka(ctx, req.archiveOnly, async (kafka) => {
      const tables = await resolveTables(archive, kafka, req.tables);
      await target.check(tables, req.force);
      const plan = await planRestore(archive, kafka, {
        at,
        tables,
        archiveOnly: req.archiveOnly,
        allowGaps: req.allowGaps,
        useSnapshots: true,
      });
      ctx.logger.info(
        {
          tables,
          target: target.description,
          events: Number(plan.rows + plan.tailEvents),
          bytes: Number(plan.bytes),
        },
        'restore: reading',
      );
      clampedFrom = plan.clampedFrom;
      if (clampedFrom) {
        ctx.logger.warn(
          {
            asked: clampedFrom.kind === 'latest' ? 'latest' : clampedFrom.text,
            restoringTo: plan.at.kind === 'latest' ? 'latest' : plan.at.text,
          },
          'restore: without Kafka the archive is complete only up to the newest point every partition reaches; restoring to that point',
        );
      }
      ctx.progress?.start(Number(plan.rows + (plan.archiveOnly ? 0n : plan.tailEvents)));
      return rebuild(archive, kafka, plan, {
        maxKeys: req.maxKeys,
        ...(req.tmpDir ? { tmpDir: req.tmpDir } : {}),
        logger: ctx.logger,
        progress: (events, bytes) => ctx.progress?.update(events, bytes),
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      });
    });
    rebuilt = result;
    const filters = whereFilters(
      clauses,
      result.tables.map((t) => ({ table: t.table, columns: t.codec.table.columns })),
    );
    ctx.progress?.phase('writing');
    const written: RestoreSummary['tables'] = [];
    for (const t of result.tables) {
      const sink = await target.openTable(t.table, t.codec, req.force);
      const keep = filters.get(t.table) ?? (() => true);
      let batch: RestoredRow[] = [];
      for (const [key, slot] of t.state.rows()) {
        const row = projectRow(slot.row as Row, t.codec);
        if (!keep(row)) continue;
        batch.push({ key, row, slot });
        if (batch.length >= BATCH) {
          await sink.write(batch);
          batch = [];
        }
      }
      if (batch.length > 0) await sink.write(batch);
      const done = await sink.end();
      written.push({
        table: t.table,
        rows: done.rows,
        events: t.events,
        location: done.location,
        ...(done.keptAside ? { keptAside: done.keptAside } : {}),
      });
      if (done.keptAside) {
        ctx.logger.warn(
          { table: t.table, keptAside: done.keptAside },
          'restore: what --force replaced is kept aside',
        );
      }
      ctx.logger.info({ table: t.table, rows: done.rows, location: done.location }, 'restore: table written');
    }
    const seconds = (Date.now() - started) / 1000;
    const summary: RestoreSummary = {
      at: at.kind === 'latest' ? 'latest' : at.text,
      target: target.description,
      position: result.restoredTo ? formatPosition(result.restoredTo.pos) : null,
      positionTime: result.restoredTo ? new Date(result.restoredTo.tsMs).toISOString() : null,
      tables: written,
      events: result.events,
      fromKafka: result.fromKafka,
      stoppedShortOf: clampedFrom ? (clampedFrom.kind === 'latest' ? 'latest' : clampedFrom.text) : null,
      bytesRead: result.bytes,
      seconds,
      eventsPerSecond: Math.round(result.events / Math.max(seconds, 0.001)),
    };
    await target.finish({
      at: summary.at,
      position: summary.position,
      positionTime: summary.positionTime,
      tables: result.tables.map((t, i) => ({
        table: t.table,
        rows: written[i]?.rows ?? 0,
        schemaVersion: t.codec.version,
        location: written[i]?.location ?? '',
      })),
      finishedAt: new Date().toISOString(),
    });
    return summary;
  } finally {
    // Spilled states leave nothing behind, whatever failed.
    for (const t of rebuilt?.tables ?? []) t.state.discard();
    ctx.progress?.stop();
    await target.close();
  }
}
