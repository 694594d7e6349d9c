// The cold archive as readers and writers see it: manifest entries (one per data file) and the data files
// they describe, in an object store, optionally encrypted.

import { avroType, type AvroSchema, type AvroType } from './avro.js';
import { readAvroBlocks, writeAvroFile } from './avro-file.js';
import { manifestDayPrefixes, tableDir } from './archive-layout.js';
import { decrypt, encrypt, isEncrypted, type Keyring } from './encryption.js';
import { TidemarkError } from './errors.js';
import type { ObjectStore } from './object-store/index.js';
import { loadSchemaFile } from './package-root.js';

export interface ColumnRange {
  min: string | null;
  max: string | null;
}

/** schemas/manifest-entry.avsc in memory; offsets are bigint so they stay exact. */
export interface ManifestEntry {
  table: string;
  object_key: string;
  partition: number;
  first_offset: bigint;
  last_offset: bigint;
  first_pos: string;
  last_pos: string;
  min_ts_ms: bigint;
  max_ts_ms: bigint;
  rows: bigint;
  bytes: bigint;
  sha256: string;
  schema_fingerprint: string;
  codec: string;
  key_id: string | null;
  column_stats: Record<string, ColumnRange>;
  written_ms: bigint;
  /** Positions strictly increase through the file; false when unknown. */
  positions_ascending: boolean;
}

let manifestSchema: Record<string, unknown> | undefined;
function schema(): Record<string, unknown> {
  manifestSchema ??= loadSchemaFile('manifest-entry');
  return manifestSchema;
}

/** A manifest entry as a one-record Avro file (self-describing, readable by any Avro tool). */
export function encodeManifestEntry(entry: ManifestEntry, name: string): Promise<Buffer> {
  return writeAvroFile(schema(), [entry], { name, codec: 'null' });
}

const manifestReaders = new Map<string, { type: AvroType; resolver: unknown }>();

/** Decodes a manifest entry written by any version of its schema into today's (resolvers are cached per version). */
export function decodeManifestEntry(body: Buffer, name: string): Promise<ManifestEntry> {
  try {
    const avro = readAvroBlocks(body, name);
    const version = avro.metadata['tidemark.schema'] ?? avro.metadata['avro.schema'] ?? '';
    const reader = avroType(schema() as AvroSchema);
    let known = manifestReaders.get(version);
    if (!known) {
      known = { type: reader, resolver: reader.createResolver(avroType(avro.schema)) };
      manifestReaders.set(version, known);
    }
    const records: ManifestEntry[] = [];
    for (const { count, data } of avro.blocks()) {
      let at = 0;
      for (let i = 0; i < count; i++) {
        const decoded = (
          known.type as unknown as {
            decode(b: Buffer, at: number, r: unknown): { value: ManifestEntry; offset: number };
          }
        ).decode(data, at, known.resolver);
        if (decoded.offset < 0)
          throw new TidemarkError('OBJECT_CORRUPT', `${name}: a record runs past its block`);
        at = decoded.offset;
        records.push(decoded.value);
      }
    }
    const record = records[0];
    if (records.length !== 1 || record === undefined) {
      throw new TidemarkError(
        'OBJECT_CORRUPT',
        `${name} should hold one manifest entry, not ${records.length}`,
      );
    }
    return Promise.resolve({ ...record, partition: Number(record.partition) });
  } catch (err) {
    if (err instanceof TidemarkError) return Promise.reject(err);
    return Promise.reject(
      new TidemarkError(
        'OBJECT_CORRUPT',
        `${name} is not a readable manifest entry: ${(err as Error).message}`,
        {
          cause: err,
        },
      ),
    );
  }
}

/** Manifest entries fetched at once while listing. */
const MANIFEST_FETCHES = 16;

export interface ListManifestOptions {
  /** Only days that can hold events between these times (ms). Omitted: every day of the table. */
  fromMs?: number;
  toMs?: number;
}

/**
 * The manifest entries of one table, in key order per day. Listing costs one list request per day asked for
 * (plus one per 1000 entries), never a walk of the whole archive.
 */
export async function* listManifestEntries(
  store: ObjectStore,
  prefix: string,
  db: string,
  table: string,
  o: ListManifestOptions = {},
): AsyncGenerator<ManifestEntry> {
  const prefixes =
    o.fromMs !== undefined && o.toMs !== undefined
      ? manifestDayPrefixes(prefix, db, table, o.fromMs, o.toMs)
      : [`${[prefix, 'manifests', tableDir(db, table)].filter((p) => p).join('/')}/`];
  for (const dayPrefix of prefixes) {
    const keys: string[] = [];
    for await (const info of store.list(dayPrefix)) keys.push(info.key);
    // Fetched several at a time (each entry is its own small object), handed out in key order.
    for (let i = 0; i < keys.length; i += MANIFEST_FETCHES) {
      const entries = await Promise.all(
        keys
          .slice(i, i + MANIFEST_FETCHES)
          .map(async (key) => decodeManifestEntry(await store.get(key), `${store.url}/${key}`)),
      );
      for (const entry of entries) {
        if (o.fromMs !== undefined && Number(entry.max_ts_ms) < o.fromMs) continue;
        if (o.toMs !== undefined && Number(entry.min_ts_ms) > o.toMs) continue;
        yield entry;
      }
    }
  }
}

/** Tables that have manifests under the archive prefix, as their directory names (`db.table`). */
export async function listArchivedTables(store: ObjectStore, prefix: string): Promise<string[]> {
  const root = `${[prefix, 'manifests'].filter((p) => p).join('/')}/`;
  const tables = new Set<string>();
  for await (const info of store.list(root)) tables.add(info.key.slice(root.length).split('/')[0] as string);
  return [...tables].sort();
}

/** Encrypts when a keyring is given; the stored bytes are what the manifest's SHA-256 covers. */
export function sealObject(body: Buffer, keyring: Keyring | undefined): Buffer {
  return keyring ? encrypt(body, keyring) : body;
}

/** The bytes of a data file, checked against its manifest entry's SHA-256 and decrypted when needed. */
export async function readDataFile(
  store: ObjectStore,
  entry: ManifestEntry,
  keyring: Keyring | undefined,
): Promise<Buffer> {
  const name = `${store.url}/${entry.object_key}`;
  const stored = await store.get(entry.object_key, { sha256: entry.sha256 });
  if (!isEncrypted(stored)) return stored;
  if (!keyring) {
    throw new TidemarkError(
      'KEY_MISSING',
      `${name} is encrypted (key "${entry.key_id}") and no keys are configured`,
      {
        hint: 'configure tier.cold.encryption.keys with the master key that wrote the archive',
      },
    );
  }
  return decrypt(stored, keyring, name);
}
