// `tidemark status`: one look at a running deployment, read from where its state lives (the source, Kafka
// and the archive) rather than from the daemons: capture's position and lag, the tier groups' lags, the last
// archive upload, snapshots, and per table the window it can be restored to. Each part that cannot be read
// says why; anything that needs an operator is listed as a problem.

import type { Kafka } from 'kafkajs';
import type { Checkpoint } from '../capture/kafka-sink.js';
import { binlogEnd, connectSource } from '../capture/source-checks.js';
import {
  binlogSequence,
  createKafka,
  describePosition,
  parsePosition,
  SchemaCatalog,
  type Config,
  type Logger,
  type ManifestEntry,
} from '../core/index.js';
import { archiveUrl, openArchive, tableEntries } from './archive-reader.js';
import { changeTopics, latestCheckpoint, topicOffsets } from './kafka-tail.js';
import { planRestore, type PointInfo } from './rebuild.js';
import { resolveTables, formatBytes } from './restore.js';
import { listSnapshots, type SnapshotManifest } from './snapshot-catalog.js';

export interface GroupLag {
  group: string;
  /** Records between the group's committed offsets and the ends of the change topics (markers included). */
  lag: number;
  /** Partitions the group has never committed on (their whole content counts as lag). */
  uncommitted: number;
  partitions: number;
}

export interface TableStatus {
  table: string;
  files: number;
  bytes: number;
  rows: number;
  lastUploadMs: number | undefined;
  first: PointInfo | undefined;
  /** Newest archived (or snapshotted) change. */
  last: PointInfo | undefined;
  /** Committed changes in Kafka not archived yet: a restore to the latest point reads them from Kafka. */
  tailEvents: number;
  gaps: string[];
  error?: string;
}

export interface DeploymentStatus {
  atMs: number;
  source?: { address: string; binlog?: { file: string; offset: number }; error?: string };
  capture?: {
    checkpoint?: Checkpoint;
    /** How far the checkpoint is behind the source's binlog end. */
    behind?: { files: number; bytes: number | undefined; seconds: number };
    error?: string;
  };
  kafka?: { brokers: string; topics: number; events: number; groups: GroupLag[]; error?: string };
  archive?: { url: string; tables: TableStatus[]; error?: string };
  snapshots?: { count: number; newest?: SnapshotManifest; oldest?: SnapshotManifest; error?: string };
  problems: string[];
}

const message = (err: unknown) =>
  err instanceof Error ? ((err as { describe?: () => string }).describe?.() ?? err.message) : String(err);

async function groupLag(
  kafka: Kafka,
  group: string,
  ends: Map<string, Map<number, { low: bigint; high: bigint }>>,
): Promise<GroupLag> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const committed = await admin.fetchOffsets({ groupId: group, topics: [...ends.keys()] });
    let lag = 0n;
    let uncommitted = 0;
    let partitions = 0;
    for (const [topic, offsets] of ends) {
      const mine = committed.find((c) => c.topic === topic)?.partitions ?? [];
      for (const [partition, { low, high }] of offsets) {
        partitions += 1;
        const at = BigInt(mine.find((p) => p.partition === partition)?.offset ?? '-1');
        // A partition that never held a record has nothing to commit.
        if (at < 0n && high > 0n) uncommitted += 1;
        const from = at < 0n ? low : at;
        if (high > from) lag += high - from;
      }
    }
    return { group, lag: Number(lag), uncommitted, partitions };
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** The checkpoint's distance to the source's binlog end. */
function behind(
  checkpoint: Checkpoint,
  end: { file: string; offset: number },
  nowMs: number,
): NonNullable<NonNullable<DeploymentStatus['capture']>['behind']> {
  const files = binlogSequence(end.file) - binlogSequence(checkpoint.binlogFile);
  const bytes = files === 0 ? Math.max(0, end.offset - checkpoint.binlogOffset) : undefined;
  const caughtUp = files <= 0 && (bytes ?? 0) === 0;
  return { files, bytes, seconds: caughtUp ? 0 : Math.max(0, (nowMs - checkpoint.tsMs) / 1000) };
}

export async function deploymentStatus(
  config: Config,
  logger: Logger,
  nowMs = Date.now(),
): Promise<DeploymentStatus> {
  const status: DeploymentStatus = { atMs: nowMs, problems: [] };
  const problem = (text: string) => status.problems.push(text);

  if (config.source) {
    const { host, port } = config.source;
    status.source = { address: `${host}:${port}` };
    try {
      const conn = await connectSource(config.source);
      try {
        status.source.binlog = await binlogEnd(conn);
      } finally {
        await conn.end().catch(() => undefined);
      }
    } catch (err) {
      status.source.error = message(err);
      problem(`source: ${status.source.error}`);
    }
  }

  let kafka: Kafka | undefined;
  let catalog: SchemaCatalog | undefined;
  try {
    if (config.kafka) {
      const prefix = config.kafka.topicPrefix;
      kafka = createKafka(config.kafka, logger, '-status');
      status.kafka = { brokers: config.kafka.brokers.join(','), topics: 0, events: 0, groups: [] };
      status.capture = {};
      try {
        const checkpoint = await latestCheckpoint(kafka, prefix, logger);
        status.capture.checkpoint = checkpoint;
        if (!checkpoint) {
          problem(`capture: no checkpoint in ${prefix}.checkpoints yet (has tidemark capture started?)`);
        } else if (status.source?.binlog) {
          // A quiet source writes nothing new and capture nothing either: only a checkpoint both behind the
          // source and old says capture is not keeping up (or not running).
          const b = behind(checkpoint, status.source.binlog, nowMs);
          status.capture.behind = b;
          const age = nowMs - checkpoint.writtenMs;
          const limit = Math.max(60_000, 3 * config.capture.checkpointIntervalMs);
          if (b.seconds > 0 && age > limit) {
            problem(
              `capture: the source's binlog has moved on and the last checkpoint was written ${duration(age)} ago: ` +
                'is tidemark capture running? (its /healthz and log say why not)',
            );
          }
        }
      } catch (err) {
        status.capture.error = message(err);
        problem(`capture: ${status.capture.error}`);
      }
      try {
        const topics = await changeTopics(kafka, prefix);
        const ends = new Map<string, Map<number, { low: bigint; high: bigint }>>();
        for (const topic of topics) ends.set(topic, await topicOffsets(kafka, topic));
        status.kafka.topics = topics.length;
        status.kafka.events = Number(
          [...ends.values()].reduce(
            (n, m) => n + [...m.values()].reduce((k, r) => k + r.high - r.low, 0n),
            0n,
          ),
        );
        if (config.tier) {
          const base = config.tier.group ?? `${prefix}.tier`;
          const parts = [config.tier.hot && 'hot', config.tier.cold && 'cold'].filter(
            (p): p is string => typeof p === 'string',
          );
          for (const part of parts) status.kafka.groups.push(await groupLag(kafka, `${base}.${part}`, ends));
        }
      } catch (err) {
        status.kafka.error = message(err);
        problem(`kafka: ${status.kafka.error}`);
      }
      catalog = new SchemaCatalog(kafka, prefix, logger);
    }

    if (config.tier?.cold) {
      const archive = openArchive(config);
      status.archive = { url: archiveUrl(archive), tables: [] };
      status.snapshots = { count: 0 };
      try {
        const list = await listSnapshots(archive);
        status.snapshots = { count: list.length, newest: list.at(-1), oldest: list[0] };
        const everyMs = config.replay.snapshots.everyHours * 3_600_000;
        const newest = list.at(-1);
        // Its age as written (a quiet source's scheduler writes no new one, nothing having changed).
        if (newest && nowMs - Number(newest.created_ms) > 2 * everyMs) {
          problem(
            `snapshots: the newest was written ${duration(nowMs - Number(newest.created_ms))} ago, the cadence is every ` +
              `${config.replay.snapshots.everyHours} h: is tidemark scheduler running?`,
          );
        }
      } catch (err) {
        status.snapshots.error = message(err);
        problem(`snapshots: ${status.snapshots.error}`);
      }
      try {
        const access =
          kafka && catalog ? { kafka, catalog, topicPrefix: config.kafka!.topicPrefix } : undefined;
        let tables: string[] = [];
        try {
          tables = await resolveTables(archive, access, []);
        } catch (err) {
          if ((err as { code?: string }).code !== 'OUT_OF_WINDOW') throw err;
        }
        for (const table of tables) status.archive.tables.push(await tableStatus(archive, access, table));
        for (const t of status.archive.tables) {
          if (t.error) problem(`archive: ${t.table}: ${t.error}`);
          for (const gap of t.gaps) problem(`archive: ${t.table}: ${gap}`);
        }
      } catch (err) {
        status.archive.error = message(err);
        problem(`archive: ${status.archive.error}`);
      }
    }
  } finally {
    await catalog?.close().catch(() => undefined);
  }
  return status;
}

async function tableStatus(
  archive: ReturnType<typeof openArchive>,
  access: Parameters<typeof planRestore>[1],
  table: string,
): Promise<TableStatus> {
  const entries: ManifestEntry[] = await tableEntries(archive, table);
  const t: TableStatus = {
    table,
    files: entries.length,
    bytes: entries.reduce((n, e) => n + Number(e.bytes), 0),
    rows: entries.reduce((n, e) => n + Number(e.rows), 0),
    lastUploadMs: entries.reduce<number | undefined>(
      (a, e) => (a === undefined || Number(e.written_ms) > a ? Number(e.written_ms) : a),
      undefined,
    ),
    first: undefined,
    last: undefined,
    tailEvents: 0,
    gaps: [],
  };
  try {
    const plan = await planRestore(archive, access, {
      at: { kind: 'latest' },
      tables: [table],
      archiveOnly: access === undefined,
      allowGaps: true,
      useSnapshots: true,
    });
    const p = plan.tables[0]!;
    t.first = p.window.first;
    t.last = p.window.last;
    t.tailEvents = Number(p.tailEvents);
    t.gaps = p.gaps;
  } catch (err) {
    t.error = message(err);
  }
  return t;
}

export function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86_400).toFixed(1)} days`;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const pos = (text: string) => describePosition(parsePosition(text));
const count = (n: number) => n.toLocaleString('en-US');

/** The status as a person reads it. */
export function formatStatus(s: DeploymentStatus): string {
  const out: string[] = [`tidemark status at ${iso(s.atMs)}`, ''];
  const ago = (ms: number) => `${duration(s.atMs - ms)} ago`;
  const row = (name: string, text: string) => out.push(`${name.padEnd(11)}${text}`);
  if (s.source) {
    row(
      'source',
      s.source.error
        ? `${s.source.address}: ${s.source.error}`
        : `${s.source.address}, binlog ends at ${s.source.binlog!.file}:${s.source.binlog!.offset}`,
    );
  }
  if (s.capture) {
    const c = s.capture.checkpoint;
    if (s.capture.error) row('capture', s.capture.error);
    else if (!c) row('capture', 'no checkpoint yet');
    else {
      const b = s.capture.behind;
      const lag = !b
        ? ''
        : b.seconds === 0
          ? ', caught up'
          : `, ${b.files > 0 ? `${b.files} binlog file(s)` : `${count(b.bytes ?? 0)} bytes`} behind (lag ${duration(b.seconds * 1000)})`;
      row(
        'capture',
        `${c.phase}${c.phase === 'snapshot' ? ' (initial snapshot in progress)' : ''}, checkpoint ${c.binlogFile}:${c.binlogOffset} ` +
          `written ${ago(c.writtenMs)}${lag}`,
      );
    }
  }
  if (s.kafka) {
    if (s.kafka.error) row('kafka', `${s.kafka.brokers}: ${s.kafka.error}`);
    else {
      row(
        'kafka',
        `${s.kafka.brokers}, ${s.kafka.topics} change topics, ${count(s.kafka.events)} records retained`,
      );
      for (const g of s.kafka.groups) {
        const never =
          g.uncommitted > 0 ? `, ${g.uncommitted}/${g.partitions} partitions never committed` : '';
        row('', `group ${g.group}: lag ${count(g.lag)} records over ${g.partitions} partitions${never}`);
      }
    }
  }
  if (s.archive) {
    const tables = s.archive.tables;
    const files = tables.reduce((n, t) => n + t.files, 0);
    const bytes = tables.reduce((n, t) => n + t.bytes, 0);
    const last = tables.reduce<number | undefined>(
      (a, t) =>
        t.lastUploadMs !== undefined && (a === undefined || t.lastUploadMs > a) ? t.lastUploadMs : a,
      undefined,
    );
    row(
      'archive',
      s.archive.error
        ? `${s.archive.url}: ${s.archive.error}`
        : `${s.archive.url}, ${tables.length} tables, ${count(files)} files, ${formatBytes(bytes)}, ` +
            `last upload ${last === undefined ? 'never' : `${iso(last)} (${ago(last)})`}`,
    );
  }
  if (s.snapshots) {
    const n = s.snapshots.newest;
    row(
      'snapshots',
      s.snapshots.error
        ? s.snapshots.error
        : s.snapshots.count === 0
          ? 'none yet'
          : `${s.snapshots.count}, newest ${n!.id} at ${pos(n!.pos)} (${ago(Number(n!.ts_ms))}), oldest ${iso(Number(s.snapshots.oldest!.ts_ms))}`,
    );
  }
  if (s.archive && s.archive.tables.length > 0) {
    out.push('', 'restorable window');
    const width = Math.max(...s.archive.tables.map((t) => t.table.length));
    for (const t of s.archive.tables) {
      const window =
        t.error ??
        (t.first && t.last
          ? `${iso(t.first.tsMs)} … ${iso(t.last.tsMs)}${t.tailEvents > 0 ? `, then up to ${count(t.tailEvents)} changes still in Kafka` : ''}`
          : t.tailEvents > 0
            ? `nothing archived yet; up to ${count(t.tailEvents)} changes in Kafka`
            : 'nothing yet');
      out.push(
        `  ${t.table.padEnd(width)}  ${window}  (${count(t.files)} files, ${count(t.rows)} changes, ${formatBytes(t.bytes)})`,
      );
    }
  }
  out.push('');
  if (s.problems.length === 0) out.push('no problems found');
  else {
    out.push(`${s.problems.length} problem(s):`);
    for (const p of s.problems) out.push(`  - ${p}`);
  }
  return `${out.join('\n')}\n`;
}
