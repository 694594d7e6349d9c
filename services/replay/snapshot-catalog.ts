// Snapshots in the archive: the full state of some tables at one position, written as envelope records
// (op r, each row with the position of its last change) plus one manifest per snapshot.
//
//   <prefix>/snapshots/<id>/manifest.avro
//   <prefix>/snapshots/<id>/<db>.<table>/part-00000.avro …

import {
  avroType,
  loadSchemaFile,
  readAvroFile,
  TidemarkError,
  writeAvroFile,
  type AvroSchema,
} from '../core/index.js';
import { archiveKey, type Archive, type DataFileRef } from './archive-reader.js';

export interface SnapshotFile {
  object_key: string;
  rows: bigint;
  bytes: bigint;
  sha256: string;
  key_id: string | null;
}

export interface SnapshotTable {
  table: string;
  schema_fingerprint: string;
  rows: bigint;
  files: SnapshotFile[];
}

/** schemas/snapshot-manifest.avsc in memory. */
export interface SnapshotManifest {
  id: string;
  pos: string;
  ts_ms: bigint;
  created_ms: bigint;
  base: string | null;
  tables: SnapshotTable[];
}

let schema: Record<string, unknown> | undefined;
function manifestSchema(): Record<string, unknown> {
  schema ??= loadSchemaFile('snapshot-manifest');
  return schema;
}

export function snapshotRoot(archive: Archive): string {
  return `${archiveKey(archive, 'snapshots')}/`;
}

export function snapshotManifestKey(archive: Archive, id: string): string {
  return archiveKey(archive, 'snapshots', id, 'manifest.avro');
}

export function snapshotFileRef(table: SnapshotTable, file: SnapshotFile): DataFileRef {
  return { ...file, schema_fingerprint: table.schema_fingerprint };
}

export function encodeSnapshotManifest(m: SnapshotManifest): Promise<Buffer> {
  return writeAvroFile(manifestSchema(), [m], { name: `snapshot ${m.id}`, codec: 'null' });
}

export async function readSnapshotManifest(archive: Archive, key: string): Promise<SnapshotManifest> {
  const name = `${archive.store.url}/${key}`;
  const file = await readAvroFile(await archive.store.get(key), name);
  if (file.records.length !== 1) {
    throw new TidemarkError('OBJECT_CORRUPT', `${name} should hold one snapshot manifest`);
  }
  const reader = avroType(manifestSchema() as AvroSchema);
  const writer = avroType(file.schema);
  return reader.fromBuffer(
    writer.toBuffer(file.records[0]),
    reader.createResolver(writer),
  ) as SnapshotManifest;
}

/** Every complete snapshot (one whose manifest was written), oldest position first. */
export async function listSnapshots(archive: Archive): Promise<SnapshotManifest[]> {
  const root = snapshotRoot(archive);
  const out: SnapshotManifest[] = [];
  for await (const info of archive.store.list(root)) {
    if (!info.key.endsWith('/manifest.avro')) continue;
    out.push(await readSnapshotManifest(archive, info.key));
  }
  return out.sort((a, b) => (a.pos < b.pos ? -1 : a.pos > b.pos ? 1 : 0));
}
