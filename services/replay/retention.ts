// Retention of the archive: snapshots kept grandfather-father-son (the newest per day, ISO week, month and
// year, for as many of each as the policy says), change files kept for a point-in-time window. A change file
// goes only when a kept snapshot at or before the window's start covers it, and per partition only a prefix
// goes, so what remains is contiguous and joins that snapshot. `plan` says exactly what would go and what
// restore window remains; `apply` deletes that and nothing else, manifests before data, and records it in
// the audit log.

import { listArchivedTables, TidemarkError, type Config, type ManifestEntry } from '../core/index.js';
import { ArchiveReader, archiveUrl, tableManifests, type Archive } from './archive-reader.js';
import { writeAudit, type AuditActor } from './audit.js';
import { formatBytes } from './restore.js';
import {
  listSnapshots,
  snapshotFileRef,
  snapshotManifestKey,
  type SnapshotManifest,
} from './snapshot-catalog.js';

export interface RetentionPolicy {
  /** The `last` newest snapshots, and the newest of each of so many days, weeks, months, years; -1: all. */
  snapshots: { last: number; daily: number; weekly: number; monthly: number; yearly: number };
  /** Days back from now that any point must stay restorable. */
  changesDays: number;
}

export interface SnapshotVerdict {
  id: string;
  tsMs: number;
  pos: string;
  /** Why it stays (daily 2026-11-21, weekly 2026-W47, …, newest, base of the window); empty: it goes. */
  keptFor: string[];
  files: number;
  bytes: number;
}

export interface TableRetention {
  table: string;
  /** The kept snapshot the point-in-time window of this table starts at, when change files can go. */
  base?: { id: string; pos: string; tsMs: number };
  remove: ManifestEntry[];
  /** The manifest keys of `remove`, in the same order. */
  removeManifests: string[];
  keep: number;
  /** Why nothing of this table's history goes, when nothing does. */
  note?: string;
  /** Point-in-time restores possible from here to the newest change. */
  windowFrom?: { tsMs: number; pos: string };
  windowTo?: { tsMs: number; pos: string };
}

export interface RetentionPlan {
  archive: string;
  nowMs: number;
  policy: RetentionPolicy;
  cutoffMs: number;
  snapshots: SnapshotVerdict[];
  tables: TableRetention[];
  /** Totals of what goes. */
  removeSnapshots: number;
  removeFiles: number;
  removeBytes: number;
}

const DAY = 86_400_000;

function isoWeek(ms: number): string {
  const d = new Date(ms);
  const day = (d.getUTCDay() + 6) % 7; // Monday 0
  const thursday = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - day + 3));
  const yearStart = Date.UTC(thursday.getUTCFullYear(), 0, 1);
  const week = 1 + Math.floor((thursday.getTime() - yearStart) / (7 * DAY));
  return `${thursday.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

const BUCKETS: {
  name: Exclude<keyof RetentionPolicy['snapshots'], 'last'>;
  label: string;
  key: (ms: number) => string;
}[] = [
  { name: 'daily', label: 'daily', key: (ms) => new Date(ms).toISOString().slice(0, 10) },
  { name: 'weekly', label: 'weekly', key: isoWeek },
  { name: 'monthly', label: 'monthly', key: (ms) => new Date(ms).toISOString().slice(0, 7) },
  { name: 'yearly', label: 'yearly', key: (ms) => new Date(ms).toISOString().slice(0, 4) },
];

/**
 * Which snapshots the grandfather-father-son policy keeps: going from the newest back, the first snapshot of
 * each new day (week, month, year) is kept until that bucket's count is used up. The newest is always kept.
 */
export function gfsKeep(
  snapshots: readonly { id: string; tsMs: number }[],
  policy: RetentionPolicy['snapshots'],
): Map<string, string[]> {
  const newestFirst = [...snapshots].sort((a, b) => b.tsMs - a.tsMs || (a.id < b.id ? 1 : -1));
  const reasons = new Map<string, string[]>(newestFirst.map((s) => [s.id, []]));
  if (newestFirst[0]) reasons.get(newestFirst[0].id)!.push('newest');
  newestFirst
    .slice(0, policy.last < 0 ? undefined : policy.last)
    .forEach((s, i) => reasons.get(s.id)!.push(`last ${i + 1}`));
  for (const bucket of BUCKETS) {
    const limit = policy[bucket.name];
    let used = 0;
    let last: string | undefined;
    for (const s of newestFirst) {
      if (limit >= 0 && used >= limit) break;
      const key = bucket.key(s.tsMs);
      if (key === last) continue;
      last = key;
      used++;
      reasons.get(s.id)!.push(`${bucket.label} ${key}`);
    }
  }
  return reasons;
}

/** The change files of one table that can go: per partition, the files wholly before the base snapshot. */
export function removableChanges(entries: readonly ManifestEntry[], basePos: string): ManifestEntry[] {
  const partitions = new Map<number, ManifestEntry[]>();
  for (const e of entries) partitions.set(e.partition, [...(partitions.get(e.partition) ?? []), e]);
  const out: ManifestEntry[] = [];
  for (const list of partitions.values()) {
    list.sort((a, b) => (a.first_offset < b.first_offset ? -1 : a.first_offset > b.first_offset ? 1 : 0));
    // The last file starting at or before the base stays (it may hold changes after it); all before it go,
    // as long as they are contiguous with it (a gap stays visible for verify to name).
    let k = -1;
    for (let i = 0; i < list.length; i++) if ((list[i] as ManifestEntry).first_pos <= basePos) k = i;
    for (let i = k - 1; i >= 0; i--) {
      const cur = list[i] as ManifestEntry;
      const next = list[i + 1] as ManifestEntry;
      if (cur.last_offset + 1n !== next.first_offset) break;
      out.push(cur);
    }
  }
  return out.sort((a, b) => (a.object_key < b.object_key ? -1 : 1));
}

export async function planRetention(
  archive: Archive,
  policy: RetentionPolicy,
  nowMs = Date.now(),
): Promise<RetentionPlan> {
  const cutoffMs = nowMs - policy.changesDays * DAY;
  const snapshots = await listSnapshots(archive);
  const keep = gfsKeep(
    snapshots.map((s) => ({ id: s.id, tsMs: Number(s.ts_ms) })),
    policy.snapshots,
  );
  const tables = await listArchivedTables(archive.store, archive.prefix);
  const perTable: TableRetention[] = [];
  for (const table of tables) {
    const manifests = await tableManifests(archive, table);
    const entries = manifests.map((m) => m.entry);
    const keyOf = new Map(manifests.map((m) => [m.entry, m.key]));
    const withTable = snapshots.filter((s) => s.tables.some((x) => x.table === table));
    // Where the history kept now starts: partitions whose first file is not at offset 0 (an earlier apply cut
    // them) need the snapshot that joins them, the earliest at or after their first changes. It stays.
    const partitionFirst = new Map<number, ManifestEntry>();
    for (const e of entries) {
      const f = partitionFirst.get(e.partition);
      if (!f || e.first_offset < f.first_offset) partitionFirst.set(e.partition, e);
    }
    const late = [...partitionFirst.values()].filter((e) => e.first_offset !== 0n);
    const needed = late.reduce((m, e) => (e.first_pos > m ? e.first_pos : m), '');
    const join = late.length > 0 ? withTable.find((s) => s.pos >= needed) : undefined;
    // The window's base: the newest snapshot of the table at or before the cutoff, or the joining snapshot
    // when that is newer (the history before it is gone already). It stays, whatever GFS says.
    let base = withTable
      .filter((s) => Number(s.ts_ms) <= cutoffMs)
      .reduce<SnapshotManifest | undefined>((a, b) => (a === undefined || b.pos > a.pos ? b : a), undefined);
    if (join && (!base || join.pos > base.pos)) base = join;
    const last = entries.reduce<ManifestEntry | undefined>(
      (a, e) => (a === undefined || e.last_pos > a.last_pos ? e : a),
      undefined,
    );
    const first = entries.reduce<ManifestEntry | undefined>(
      (a, e) => (a === undefined || e.first_pos < a.first_pos ? e : a),
      undefined,
    );
    const t: TableRetention = { table, remove: [], removeManifests: [], keep: entries.length };
    if (last) t.windowTo = { tsMs: Number(last.max_ts_ms), pos: last.last_pos };
    if (join) keep.get(join.id)!.push(`start of the history of ${table}`);
    if (!base) {
      t.note =
        late.length > 0
          ? 'the history kept starts after every snapshot of this table: nothing can go (tidemark verify names the gap)'
          : `no snapshot at or before the window's start: all ${entries.length} change files stay`;
      if (first && late.length === 0) t.windowFrom = { tsMs: Number(first.min_ts_ms), pos: first.first_pos };
    } else {
      keep.get(base.id)!.push(`base of the window of ${table}`);
      t.base = { id: base.id, pos: base.pos, tsMs: Number(base.ts_ms) };
      t.remove = removableChanges(entries, base.pos);
      t.removeManifests = t.remove.map((e) => keyOf.get(e) as string);
      t.keep = entries.length - t.remove.length;
      t.windowFrom =
        t.remove.length > 0 || late.length > 0 || !first || first.first_pos > base.pos
          ? { tsMs: Number(base.ts_ms), pos: base.pos }
          : { tsMs: Number(first.min_ts_ms), pos: first.first_pos };
    }
    perTable.push(t);
  }
  const verdicts: SnapshotVerdict[] = snapshots
    .map((s) => ({
      id: s.id,
      tsMs: Number(s.ts_ms),
      pos: s.pos,
      keptFor: [...new Set(keep.get(s.id) ?? [])],
      files: s.tables.reduce((n, t) => n + t.files.length, 0),
      bytes: s.tables.reduce((n, t) => n + t.files.reduce((m, f) => m + Number(f.bytes), 0), 0),
    }))
    .sort((a, b) => b.tsMs - a.tsMs);
  const gone = verdicts.filter((v) => v.keptFor.length === 0);
  return {
    archive: archiveUrl(archive),
    nowMs,
    policy,
    cutoffMs,
    snapshots: verdicts,
    tables: perTable,
    removeSnapshots: gone.length,
    removeFiles:
      perTable.reduce((n, t) => n + t.remove.length, 0) + gone.reduce((n, v) => n + v.files + 1, 0),
    removeBytes:
      perTable.reduce((n, t) => n + t.remove.reduce((m, e) => m + Number(e.bytes), 0), 0) +
      gone.reduce((n, v) => n + v.bytes, 0),
  };
}

export interface RetentionResult {
  plan: RetentionPlan;
  deletedObjects: number;
  auditKey: string;
}

/**
 * Deletes what a fresh plan names: a snapshot's manifest before its files (a snapshot without a manifest is
 * never used), a change file's manifest entry before the file (a file no manifest names is ignored by
 * restores). An interruption leaves only objects nothing refers to, which the next run or verify names.
 */
export async function applyRetention(
  archive: Archive,
  plan: RetentionPlan,
  actor: AuditActor,
  reason: string,
): Promise<RetentionResult> {
  const snapshots = new Map((await listSnapshots(archive)).map((s) => [s.id, s]));
  let deleted = 0;
  const removedSnapshots: string[] = [];
  const removedChanges: { table: string; files: number; bytes: number; through: string }[] = [];
  const record = (outcome: 'done' | 'failed', error?: string) =>
    writeAudit(archive, {
      action: 'retention.apply',
      actor,
      reason,
      outcome,
      ...(error !== undefined ? { error } : {}),
      details: {
        policy: plan.policy,
        cutoff: new Date(plan.cutoffMs).toISOString(),
        removedSnapshots,
        removedChanges,
        deletedObjects: deleted,
        window: plan.tables.map((t) => ({
          table: t.table,
          from: t.windowFrom ? new Date(t.windowFrom.tsMs).toISOString() : null,
          base: t.base?.id ?? null,
        })),
      },
    });
  try {
    // The snapshots the windows will start from must restore before anything they replace goes: every file
    // fetched, checked against its SHA-256, decrypted with the configured keys and decoded.
    const reader = new ArchiveReader(archive);
    for (const id of new Set(plan.tables.filter((t) => t.remove.length > 0).map((t) => t.base!.id))) {
      const s = snapshots.get(id);
      if (!s) throw new TidemarkError('OBJECT_NOT_FOUND', `snapshot ${id}, the base of the plan, is gone`);
      for (const t of s.tables)
        for (const f of t.files) await reader.forEach(snapshotFileRef(t, f), () => undefined);
    }
    for (const v of plan.snapshots.filter((x) => x.keptFor.length === 0)) {
      const s = snapshots.get(v.id);
      if (!s) continue;
      await archive.store.delete([snapshotManifestKey(archive, s.id)]);
      const files = s.tables.flatMap((t) => t.files.map((f) => f.object_key));
      for (let i = 0; i < files.length; i += 500) await archive.store.delete(files.slice(i, i + 500));
      deleted += files.length + 1;
      removedSnapshots.push(s.id);
    }
    for (const t of plan.tables) {
      if (t.remove.length === 0) continue;
      const manifests = t.removeManifests;
      for (let i = 0; i < manifests.length; i += 500) await archive.store.delete(manifests.slice(i, i + 500));
      const data = t.remove.map((e) => e.object_key);
      for (let i = 0; i < data.length; i += 500) await archive.store.delete(data.slice(i, i + 500));
      deleted += manifests.length + data.length;
      removedChanges.push({
        table: t.table,
        files: data.length,
        bytes: t.remove.reduce((n, e) => n + Number(e.bytes), 0),
        through: t.remove.reduce((m, e) => (e.last_pos > m ? e.last_pos : m), ''),
      });
    }
  } catch (err) {
    await record('failed', err instanceof Error ? err.message : String(err)).catch(() => undefined);
    throw err;
  }
  const auditKey = await record('done');
  return { plan, deletedObjects: deleted, auditKey };
}

export function policyFromConfig(config: Config): RetentionPolicy {
  const r = config.replay.retention;
  return { snapshots: { ...r.snapshots }, changesDays: r.changesDays };
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const count = (n: number) => n.toLocaleString('en-US');
const keepCount = (n: number) => (n < 0 ? 'all' : String(n));

/** The plan as a person reads it: what goes, what stays and why, and the restore window that remains. */
export function formatRetentionPlan(plan: RetentionPlan, verbose = false): string {
  const p = plan.policy;
  const out: string[] = [
    `retention of ${plan.archive} at ${iso(plan.nowMs)}`,
    `  policy: snapshots last ${keepCount(p.snapshots.last)}, daily ${keepCount(p.snapshots.daily)}, weekly ${keepCount(p.snapshots.weekly)}, ` +
      `monthly ${keepCount(p.snapshots.monthly)}, yearly ${keepCount(p.snapshots.yearly)}; ` +
      `every point of the last ${p.changesDays} days restorable (from ${iso(plan.cutoffMs)})`,
    '',
  ];
  const gone = plan.snapshots.filter((s) => s.keptFor.length === 0);
  out.push(
    `snapshots: ${plan.snapshots.length - gone.length} kept, ${gone.length} to delete` +
      (gone.length > 0
        ? ` (${count(gone.reduce((n, s) => n + s.files + 1, 0))} objects, ${formatBytes(gone.reduce((n, s) => n + s.bytes, 0))})`
        : ''),
  );
  for (const s of plan.snapshots) {
    if (s.keptFor.length > 0 && !verbose) continue;
    out.push(
      `  ${s.keptFor.length > 0 ? 'keep  ' : 'delete'} ${s.id}  ${iso(s.tsMs)}  ` +
        (s.keptFor.length > 0 ? s.keptFor.join(', ') : `${s.files} files, ${formatBytes(s.bytes)}`),
    );
  }
  const files = plan.tables.reduce((n, t) => n + t.remove.length, 0);
  const bytes = plan.tables.reduce((n, t) => n + t.remove.reduce((m, e) => m + Number(e.bytes), 0), 0);
  out.push(
    '',
    `change files: ${count(files)} to delete${files > 0 ? ` (${formatBytes(bytes)} and their manifests)` : ''}`,
  );
  const width = Math.max(0, ...plan.tables.map((t) => t.table.length));
  for (const t of plan.tables) {
    const what =
      t.remove.length > 0
        ? `delete ${count(t.remove.length)} files (${formatBytes(t.remove.reduce((n, e) => n + Number(e.bytes), 0))}) ` +
          `wholly before snapshot ${t.base!.id}; keep ${count(t.keep)}`
        : (t.note ?? `nothing before snapshot ${t.base?.id ?? '?'} to delete; keep ${count(t.keep)}`);
    out.push(`  ${t.table.padEnd(width)}  ${what}`);
  }
  out.push('', 'restore window that remains');
  const older = plan.snapshots.filter((s) => s.keptFor.length > 0);
  for (const t of plan.tables) {
    const from = t.windowFrom ? iso(t.windowFrom.tsMs) : '?';
    const to = t.windowTo ? iso(t.windowTo.tsMs) : 'the newest change';
    const points = older.filter((s) => t.windowFrom && s.tsMs < t.windowFrom.tsMs);
    out.push(
      `  ${t.table.padEnd(width)}  any point from ${from} to ${to}` +
        (points.length > 0
          ? `; before that, ${points.length} snapshot point(s), the oldest ${iso(points.at(-1)!.tsMs)}`
          : ''),
    );
  }
  return `${out.join('\n')}\n`;
}
