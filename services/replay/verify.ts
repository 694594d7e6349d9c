// `tidemark verify`: proof that the archive restores. Every data file of the change history and of every
// snapshot is fetched, checked against its manifest's SHA-256, decrypted and decoded record by record; the
// change files of each partition must follow each other offset by offset from where the history joins a
// snapshot (or from offset 0) to the newest file; and what Kafka no longer holds must be in the archive.
// Each problem names the object and what to check.

import {
  formatPosition,
  isTidemarkError,
  tableMatcher,
  type ManifestEntry,
  type TableCodec,
  type ChangeEvent,
} from '../core/index.js';
import {
  ArchiveReader,
  archiveKey,
  archiveUrl,
  openArchive,
  tableEntries,
  type Archive,
  type DataFileRef,
} from './archive-reader.js';
import { runDrill, type DrillReport } from './drill.js';
import { topicOffsets } from './kafka-tail.js';
import type { KafkaAccess } from './rebuild.js';
import { formatBytes, resolveTables, withKafka, type ReplayContext } from './restore.js';
import { snapshotFileRef, listSnapshots, type SnapshotManifest } from './snapshot-catalog.js';

export interface VerifyProblem {
  /** OBJECT_CORRUPT, OBJECT_NOT_FOUND, KEY_MISSING, KEY_WRONG, ARCHIVE_GAP, ARCHIVE_OVERLAP, … */
  code: string;
  table: string | null;
  /** The object concerned, when there is one. */
  object?: string;
  message: string;
}

export interface TableIntegrity {
  table: string;
  files: number;
  rows: number;
  bytes: number;
  partitions: number;
  /** Position and time of the oldest and newest archived change. */
  first?: { pos: string; tsMs: number };
  last?: { pos: string; tsMs: number };
  /** The snapshot the change history joins (restores to points after it need no older file), if any. */
  joinedSnapshot?: string;
  /** Objects under the table's change prefix that no manifest names (invisible to restores). */
  unlisted: string[];
}

export interface IntegrityReport {
  tables: TableIntegrity[];
  snapshots: { id: string; files: number; rows: number }[];
  problems: VerifyProblem[];
  filesChecked: number;
  bytesChecked: number;
  seconds: number;
}

export interface VerifyProgress {
  start(totalFiles: number): void;
  update(files: number, bytes: number): void;
}

const describe = (err: unknown) =>
  isTidemarkError(err) ? err.describe() : err instanceof Error ? err.message : String(err);

/** Fetches, checks and decodes one file; every record must lie inside the manifest's stated ranges. */
async function checkFile(
  reader: ArchiveReader,
  file: DataFileRef,
  table: string,
  entry: ManifestEntry | undefined,
  problems: VerifyProblem[],
): Promise<void> {
  const name = `${reader.archive.store.url}/${file.object_key}`;
  let outside: string | undefined;
  const inRange = entry
    ? (e: ChangeEvent) => {
        const pos = formatPosition(e.pos);
        if (outside) return;
        if (pos < entry.first_pos || pos > entry.last_pos) {
          outside = `holds position ${pos} outside its manifest's ${entry.first_pos} … ${entry.last_pos}`;
        } else if (e.tsMs < Number(entry.min_ts_ms) || e.tsMs > Number(entry.max_ts_ms)) {
          outside = `holds event time ${e.tsMs} outside its manifest's ${entry.min_ts_ms} … ${entry.max_ts_ms}`;
        }
      }
    : () => undefined;
  try {
    await reader.forEach(file, (e: ChangeEvent, _codec: TableCodec) => inRange(e));
    if (outside)
      problems.push({ code: 'OBJECT_CORRUPT', table, object: name, message: `${name} ${outside}` });
  } catch (err) {
    problems.push({
      code: isTidemarkError(err) ? err.code : 'INTERNAL',
      table,
      object: name,
      message: describe(err),
    });
  }
}

/** Offsets per partition: joined to a snapshot or starting at 0, then each file right after the one before. */
function continuity(
  table: string,
  entries: readonly ManifestEntry[],
  snapshots: readonly SnapshotManifest[],
  kafkaEnds: Map<number, { low: bigint; high: bigint }>,
  problems: VerifyProblem[],
): string | undefined {
  const partitions = new Map<number, ManifestEntry[]>();
  for (const e of entries) partitions.set(e.partition, [...(partitions.get(e.partition) ?? []), e]);
  for (const p of kafkaEnds.keys()) if (!partitions.has(p)) partitions.set(p, []);
  // Where a partition's archive starts later than offset 0, the history before it must be in a snapshot.
  const lateStarts = [...partitions.values()]
    .map((l) => l[0])
    .filter((e): e is ManifestEntry => e !== undefined && e.first_offset !== 0n);
  const needed = lateStarts.reduce((m, e) => (e.first_pos > m ? e.first_pos : m), '');
  const withTable = snapshots.filter((s) => s.tables.some((t) => t.table === table));
  const joined = lateStarts.length === 0 ? undefined : withTable.find((s) => s.pos >= needed);
  if (lateStarts.length > 0 && !joined) {
    for (const e of lateStarts) {
      problems.push({
        code: 'ARCHIVE_GAP',
        table,
        message:
          `${table} partition ${e.partition}: offsets 0–${e.first_offset - 1n} are not in the archive and no ` +
          `snapshot at or after position ${e.first_pos} covers them`,
      });
    }
  }
  for (const [partition, list] of [...partitions].sort((a, b) => a[0] - b[0])) {
    const where = `${table} partition ${partition}`;
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1] as ManifestEntry;
      const cur = list[i] as ManifestEntry;
      if (cur.first_offset > prev.last_offset + 1n) {
        problems.push({
          code: 'ARCHIVE_GAP',
          table,
          message: `${where}: offsets ${prev.last_offset + 1n}–${cur.first_offset - 1n} are missing between ${prev.object_key} and ${cur.object_key}`,
        });
      } else if (cur.first_offset <= prev.last_offset) {
        problems.push({
          code: 'ARCHIVE_OVERLAP',
          table,
          message: `${where}: ${prev.object_key} (offsets ${prev.first_offset}–${prev.last_offset}) and ${cur.object_key} (from ${cur.first_offset}) overlap`,
        });
      }
    }
    const range = kafkaEnds.get(partition);
    const archivedEnd = (list.at(-1)?.last_offset ?? -1n) + 1n;
    if (range && range.low > archivedEnd) {
      problems.push({
        code: 'ARCHIVE_GAP',
        table,
        message:
          `${where}: offsets ${archivedEnd}–${range.low - 1n} left Kafka (retention) before they were archived; ` +
          'check that tidemark tier --only cold keeps up, and that the topics retain longer than the cold tier can be down',
      });
    }
  }
  return joined?.id;
}

/** Data objects under a table's change prefix that no manifest entry names. */
async function unlisted(
  archive: Archive,
  table: string,
  entries: readonly ManifestEntry[],
): Promise<string[]> {
  const known = new Set(entries.map((e) => e.object_key));
  const out: string[] = [];
  for await (const info of archive.store.list(`${archiveKey(archive, 'changes', table)}/`)) {
    if (!known.has(info.key)) out.push(info.key);
  }
  return out;
}

export async function verifyArchive(
  archive: Archive,
  kafka: KafkaAccess | undefined,
  tables: readonly string[],
  progress?: VerifyProgress,
  /** Only files written (snapshots created) at or after this time are fetched; continuity covers all. */
  sinceMs = 0,
): Promise<IntegrityReport> {
  const started = Date.now();
  const problems: VerifyProblem[] = [];
  let snapshots: SnapshotManifest[] = [];
  try {
    snapshots = await listSnapshots(archive);
  } catch (err) {
    problems.push({
      code: isTidemarkError(err) ? err.code : 'INTERNAL',
      table: null,
      message: describe(err),
    });
  }
  const perTable = new Map<string, ManifestEntry[]>();
  for (const table of tables) {
    try {
      perTable.set(table, await tableEntries(archive, table));
    } catch (err) {
      perTable.set(table, []);
      problems.push({ code: isTidemarkError(err) ? err.code : 'INTERNAL', table, message: describe(err) });
    }
  }
  const fresh = (e: ManifestEntry) => Number(e.written_ms) >= sinceMs;
  const freshSnapshot = (m: SnapshotManifest) => Number(m.created_ms) >= sinceMs;
  const snapshotFiles = snapshots
    .filter(freshSnapshot)
    .reduce((n, s) => n + s.tables.reduce((m, t) => m + t.files.length, 0), 0);
  const total = [...perTable.values()].reduce((n, l) => n + l.filter(fresh).length, 0) + snapshotFiles;
  progress?.start(total);
  const reader = new ArchiveReader(archive);
  let done = 0;
  const tick = () => {
    done += 1;
    progress?.update(done, reader.bytesRead);
  };

  const report: TableIntegrity[] = [];
  for (const table of tables) {
    const entries = perTable.get(table) ?? [];
    for (const entry of entries.filter(fresh)) {
      await checkFile(reader, entry, table, entry, problems);
      tick();
    }
    let ends = new Map<number, { low: bigint; high: bigint }>();
    if (kafka) {
      const [db = '', name = ''] = table.split(/\.(.*)/s);
      ends = await topicOffsets(kafka.kafka, `${kafka.topicPrefix}.${db}.${name}`);
    }
    const joinedSnapshot = continuity(table, entries, snapshots, ends, problems);
    const first = entries.reduce<ManifestEntry | undefined>(
      (a, e) => (a === undefined || e.first_pos < a.first_pos ? e : a),
      undefined,
    );
    const last = entries.reduce<ManifestEntry | undefined>(
      (a, e) => (a === undefined || e.last_pos > a.last_pos ? e : a),
      undefined,
    );
    report.push({
      table,
      files: entries.length,
      rows: entries.reduce((n, e) => n + Number(e.rows), 0),
      bytes: entries.reduce((n, e) => n + Number(e.bytes), 0),
      partitions: new Set(entries.map((e) => e.partition)).size,
      ...(first ? { first: { pos: first.first_pos, tsMs: Number(first.min_ts_ms) } } : {}),
      ...(last ? { last: { pos: last.last_pos, tsMs: Number(last.max_ts_ms) } } : {}),
      ...(joinedSnapshot ? { joinedSnapshot } : {}),
      unlisted: await unlisted(archive, table, entries),
    });
  }

  const snapshotReport: IntegrityReport['snapshots'] = [];
  for (const s of snapshots.filter(freshSnapshot)) {
    let rows = 0;
    let files = 0;
    for (const t of s.tables) {
      for (const f of t.files) {
        await checkFile(reader, snapshotFileRef(t, f), t.table, undefined, problems);
        files += 1;
        tick();
      }
      const sum = t.files.reduce((n, f) => n + f.rows, 0n);
      if (sum !== t.rows) {
        problems.push({
          code: 'OBJECT_CORRUPT',
          table: t.table,
          message: `snapshot ${s.id}: ${t.table} says ${t.rows} rows, its files hold ${sum}`,
        });
      }
      rows += Number(t.rows);
    }
    snapshotReport.push({ id: s.id, files, rows });
  }
  return {
    tables: report,
    snapshots: snapshotReport,
    problems,
    filesChecked: done,
    bytesChecked: reader.bytesRead,
    seconds: (Date.now() - started) / 1000,
  };
}

// --- The whole verification: integrity, then optionally the drill ------------------------------------------

export interface VerifyRequest {
  /** db.table names or patterns (empty: every archived table), less those matching `exclude`. */
  tables: readonly string[];
  exclude?: readonly string[];
  integrity: boolean;
  drill: boolean;
  /** How long the drill waits for the archive to reach its position (default: what a file may stay open). */
  waitSeconds?: number;
  /** Integrity fetches only files written at or after this time (0: every file). */
  sinceMs?: number;
}

export interface VerifyReport {
  archive: string;
  integrity?: IntegrityReport;
  drill?: DrillReport;
  /** The drill could not run to a comparison (the archive stayed behind, a gap, the source unreachable). */
  drillError?: { code: string; message: string };
  passed: boolean;
  problems: string[];
}

export async function runVerify(
  ctx: ReplayContext,
  req: VerifyRequest,
  progress?: VerifyProgress,
): Promise<VerifyReport> {
  const archive = openArchive(ctx.config);
  const report: VerifyReport = { archive: archiveUrl(archive), passed: true, problems: [] };
  const skip = tableMatcher(req.exclude ?? [], []);
  const tables = await withKafka(ctx, false, async (kafka) => {
    const chosen = (await resolveTables(archive, kafka, req.tables)).filter((t) => !skip(t));
    if (req.integrity) {
      report.integrity = await verifyArchive(archive, kafka, chosen, progress, req.sinceMs);
      report.problems.push(...report.integrity.problems.map((p) => p.message));
    }
    return chosen;
  });
  if (req.drill) {
    const cold = ctx.config.tier?.cold;
    const waitSeconds =
      req.waitSeconds ?? (cold ? cold.rotate.maxSpanSeconds + cold.flushAfterSeconds + 60 : 120);
    try {
      report.drill = await runDrill(ctx, { tables, waitSeconds });
      for (const t of report.drill.tables) {
        if (t.schemaDifference) report.problems.push(`drill: ${t.table}: ${t.schemaDifference}`);
        const { missing, extra, differing } = t.counts;
        if (missing + extra + differing > 0) {
          report.problems.push(
            `drill: ${t.table}: ${differing} rows differ, ${missing} missing from the restore, ${extra} only in the restore`,
          );
        }
      }
    } catch (err) {
      if (!isTidemarkError(err) || err.code === 'CONFIG_INVALID' || err.code === 'BAD_ARGUMENT') throw err;
      report.drillError = { code: err.code, message: describe(err) };
      report.problems.push(`drill: ${describe(err)}`);
    }
  }
  report.passed = report.problems.length === 0;
  return report;
}

const count = (n: number) => n.toLocaleString('en-US');
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The report as a person reads it. */
export function formatVerify(r: VerifyReport, colour = (_: 'ok' | 'bad', s: string) => s): string {
  const out: string[] = [];
  const ok = colour('ok', '✓');
  const bad = colour('bad', '✗');
  const i = r.integrity;
  if (i) {
    out.push(
      `archive integrity of ${r.archive}: ${count(i.filesChecked)} files, ${formatBytes(i.bytesChecked)} fetched, ` +
        `SHA-256 checked and decoded in ${i.seconds.toFixed(1)} s`,
    );
    const width = Math.max(0, ...i.tables.map((t) => t.table.length));
    for (const t of i.tables) {
      const mine = i.problems.filter((p) => p.table === t.table);
      const span = t.first && t.last ? `  ${iso(t.first.tsMs)} … ${iso(t.last.tsMs)}` : '';
      const joined = t.joinedSnapshot ? `, joins snapshot ${t.joinedSnapshot}` : '';
      out.push(
        `  ${mine.length === 0 ? ok : bad} ${t.table.padEnd(width)}  ${count(t.files)} files  ${count(t.rows)} changes  ` +
          `${formatBytes(t.bytes)}  ${t.partitions} partition(s)${span}${joined}`,
      );
      if (t.unlisted.length > 0) {
        out.push(
          `      note: ${t.unlisted.length} object(s) no manifest names (left by an interrupted upload; restores ignore them), e.g. ${t.unlisted[0]}`,
        );
      }
    }
    const snapshotRows = i.snapshots.reduce((n, s) => n + s.rows, 0);
    const snapshotFiles = i.snapshots.reduce((n, s) => n + s.files, 0);
    const snapshotProblems = i.problems.filter((p) => p.object?.includes('/snapshots/'));
    out.push(
      i.snapshots.length === 0
        ? '  · no snapshots (checked) yet'
        : `  ${snapshotProblems.length === 0 ? ok : bad} ${i.snapshots.length} snapshot(s): ${count(snapshotFiles)} files, ${count(snapshotRows)} rows`,
    );
    for (const p of i.problems) out.push(`      ${p.code}: ${p.message.replace(/\n/g, '\n      ')}`);
  }
  if (r.drill) {
    const d = r.drill;
    out.push(
      `restore drill at ${d.at} (a consistent read of the source; the archive reached it after ${d.waitedSeconds.toFixed(1)} s)`,
    );
    const width = Math.max(0, ...d.tables.map((t) => t.table.length));
    for (const t of d.tables) {
      const { missing, extra, differing } = t.counts;
      const good = !t.schemaDifference && missing + extra + differing === 0;
      out.push(
        `  ${good ? ok : bad} ${t.table.padEnd(width)}  ${count(t.sourceRows)} rows in the source, ${count(t.restoredRows)} restored` +
          (good ? ', every row equal' : `: ${differing} differ, ${missing} missing, ${extra} extra`),
      );
      if (t.schemaDifference) out.push(`      ${t.schemaDifference}`);
      for (const x of t.differing) {
        out.push(
          `      differs: key ${x.key}${x.columns.length ? ` (columns ${x.columns.join(', ')})` : ''}`,
        );
      }
      for (const k of t.missing) out.push(`      missing from the restore: key ${k}`);
      for (const k of t.extra) out.push(`      only in the restore: key ${k}`);
    }
  }
  if (r.drillError) out.push(`restore drill: ${bad} ${r.drillError.message}`);
  out.push(
    r.passed
      ? `${ok} PASS: the archive restores`
      : `${bad} FAIL: ${r.problems.length} problem(s), listed above`,
  );
  return `${out.join('\n')}\n`;
}
