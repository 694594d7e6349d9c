// `tidemark snapshot create|list|show`: synthetic snapshots, the previous snapshot (or the archive's first
// change) plus the archived changes after it, folded to one position and written back to the archive. The
// source is never read. A snapshot's data files are change-event files (op r, each row with the position,
// time and transaction of its last change), so restores read them like any other data file.

import {
  compactUtc,
  formatPosition,
  sealObject,
  sha256Hex,
  tableMatcher,
  TidemarkError,
  writeAvroContainer,
  type ChangeEvent,
  type Row,
} from '../core/index.js';
import { archiveKey, openArchive, type Archive } from './archive-reader.js';
import { planRestore, rebuild, type RebuiltTable } from './rebuild.js';
import { resolveTables, withKafka, type ReplayContext } from './restore.js';
import {
  encodeSnapshotManifest,
  listSnapshots,
  readSnapshotManifest,
  snapshotManifestKey,
  type SnapshotFile,
  type SnapshotManifest,
  type SnapshotTable,
} from './snapshot-catalog.js';
import { parseTargetPoint } from './target-point.js';
import { projectRow } from './targets/target.js';

export interface CreateSnapshotRequest {
  /** Tables or patterns; empty: replay.snapshots.tables over what the archive holds. */
  tables: readonly string[];
  /** Point to take it at (default: the newest point archived on every partition). */
  at: string;
}

export interface CreateSnapshotResult {
  manifest: SnapshotManifest;
  /** False when the newest snapshot already stands at that position (nothing new was written). */
  created: boolean;
  seconds: number;
}

/** `20260301T100312Z-0000000042-00000000001234`: sorts by time, unique per position. */
export function snapshotId(tsMs: number, pos: string): string {
  return `${compactUtc(tsMs)}-${pos.slice(0, 25)}`;
}

async function writeTable(
  archive: Archive,
  id: string,
  t: RebuiltTable,
  rowsPerFile: number,
  codecName: 'deflate' | 'null',
): Promise<SnapshotTable> {
  const files: SnapshotFile[] = [];
  const { codec } = t;
  const [db = '', table = ''] = t.table.split(/\.(.*)/s);
  let buffers: Buffer[] = [];
  let rows = 0n;
  const flush = async () => {
    const key = archiveKey(
      archive,
      'snapshots',
      id,
      t.table,
      `part-${String(files.length).padStart(5, '0')}.avro`,
    );
    const plain = await writeAvroContainer(codec.schema, buffers, {
      name: key,
      codec: codecName,
      metadata: { 'tidemark.snapshot': id },
    });
    const body = sealObject(plain, archive.keyring);
    const sha256 = sha256Hex(body);
    await archive.store.put(key, body, { sha256 });
    files.push({
      object_key: key,
      rows: BigInt(buffers.length),
      bytes: BigInt(body.length),
      sha256,
      key_id: archive.keyring?.current.id ?? null,
    });
    buffers = [];
  };
  for (const [key, slot] of t.state.rows()) {
    const event: ChangeEvent = {
      op: 'r',
      before: null,
      after: projectRow(slot.row as Row, codec),
      key,
      tsMs: slot.tsMs,
      pos: slot.pos,
      tx: slot.tx,
      source: { serverId: 0, db, table, schemaVersion: codec.version },
    };
    buffers.push(codec.encode(event));
    rows++;
    if (buffers.length >= rowsPerFile) await flush();
  }
  // An empty table still gets a file: it carries the table's schema.
  if (buffers.length > 0 || files.length === 0) await flush();
  return { table: t.table, schema_fingerprint: codec.version, rows, files };
}

export async function createSnapshot(
  ctx: ReplayContext,
  req: CreateSnapshotRequest,
): Promise<CreateSnapshotResult> {
  const started = Date.now();
  const archive = openArchive(ctx.config);
  const settings = ctx.config.replay.snapshots;
  const at = parseTargetPoint(req.at, ctx.nowMs);
  return withKafka(ctx, false, async (kafka) => {
    let tables = await resolveTables(archive, kafka, req.tables);
    if (req.tables.length === 0) {
      const chosen = tableMatcher(settings.tables.include, settings.tables.exclude);
      tables = tables.filter(chosen);
    }
    // Kafka only tells which partitions are archived to their end; the tail itself is never read.
    const plan = await planRestore(archive, kafka, {
      at,
      tables,
      archiveOnly: true,
      allowGaps: false,
      useSnapshots: true,
    });
    // The tail is read only to end the snapshot before the first change not archived yet.
    const result = await rebuild(archive, kafka, plan, {
      maxKeys: ctx.config.replay.maxKeysInMemory,
      ...(ctx.config.replay.tmpDir ? { tmpDir: ctx.config.replay.tmpDir } : {}),
      logger: ctx.logger,
      ...(ctx.progress ? { progress: (e: number, b: number) => ctx.progress?.update(e, b) } : {}),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
    if (!result.restoredTo) {
      for (const t of result.tables) t.state.discard();
      throw new TidemarkError('OUT_OF_WINDOW', `nothing archived for ${tables.join(', ')} yet to snapshot`);
    }
    const pos = formatPosition(result.restoredTo.pos);
    const bases = plan.tables.map((t) => t.base?.snapshot).filter((s) => s !== undefined);
    const newestBase = bases.reduce<SnapshotManifest | undefined>(
      (a, b) => (a === undefined || b.pos > a.pos ? b : a),
      undefined,
    );
    const covered =
      newestBase &&
      newestBase.pos === pos &&
      tables.every((t) => newestBase.tables.some((x) => x.table === t));
    if (covered) {
      for (const t of result.tables) t.state.discard();
      ctx.logger.info({ id: newestBase.id, pos }, 'snapshot: nothing changed since the newest snapshot');
      return { manifest: newestBase, created: false, seconds: (Date.now() - started) / 1000 };
    }
    const id = snapshotId(result.restoredTo.tsMs, pos);
    ctx.progress?.phase('writing');
    const written: SnapshotTable[] = [];
    try {
      for (const t of result.tables) {
        written.push(
          await writeTable(archive, id, t, settings.rowsPerFile, ctx.config.tier?.cold?.codec ?? 'deflate'),
        );
        ctx.logger.info(
          { id, table: t.table, rows: Number(written.at(-1)?.rows) },
          'snapshot: table written',
        );
      }
    } finally {
      for (const t of result.tables) t.state.discard();
    }
    const manifest: SnapshotManifest = {
      id,
      pos,
      ts_ms: BigInt(result.maxTsMs),
      created_ms: BigInt(Date.now()),
      base: newestBase?.id ?? null,
      tables: written,
    };
    // The manifest goes last: a snapshot without one was interrupted and is never used.
    await archive.store.put(snapshotManifestKey(archive, id), await encodeSnapshotManifest(manifest));
    return { manifest, created: true, seconds: (Date.now() - started) / 1000 };
  });
}

export async function showSnapshot(ctx: ReplayContext, id: string): Promise<SnapshotManifest> {
  const archive = openArchive(ctx.config);
  const key = snapshotManifestKey(archive, id);
  if (!(await archive.store.head(key))) {
    const known = (await listSnapshots(archive)).map((s) => s.id);
    throw new TidemarkError('BAD_ARGUMENT', `no snapshot ${id} in ${archive.store.url}`, {
      hint:
        known.length > 0
          ? `snapshots: ${known.join(', ')}`
          : 'there are no snapshots yet (tidemark snapshot create)',
    });
  }
  return readSnapshotManifest(archive, key);
}

export async function snapshots(ctx: ReplayContext): Promise<SnapshotManifest[]> {
  return listSnapshots(openArchive(ctx.config));
}
