// Checks what tier wrote against the source: the hot replica's rows equal the source rows (value by value,
// read back through the MongoDB driver), and the archive tiles every partition's offsets and replays to the
// source state.

import { Binary, Decimal128, Long, MongoClient } from 'mongodb';
import {
  listManifestEntries,
  readAvroFile,
  readDataFile,
  TableCodec,
  type ChangeEvent,
  type Keyring,
  type ManifestEntry,
  type ObjectStore,
  type Row,
} from '../../services/core/index.js';

/** Sorted-key JSON, so documents compare regardless of field order. */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

/** One comparable text per value: exact digits for integers and decimals, hex for bytes. */
function comparable(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Long) return v.toBigInt().toString();
  if (v instanceof Decimal128) return v.toString();
  if (v instanceof Binary) return `0x${Buffer.from(v.buffer).toString('hex')}`;
  if (Buffer.isBuffer(v)) return `0x${v.toString('hex')}`;
  if (typeof v === 'object') return JSON.stringify(canonical(v));
  return JSON.stringify(v);
}

/** A source row as the replica should hold it; JSON columns compare by content (parsed) where they parsed. */
export function comparableRow(row: Row, jsonColumns: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(row)) {
    out[k] = jsonColumns.includes(k) && typeof v === 'string' ? comparableJson(v) : comparable(v);
  }
  return out;
}

function comparableJson(text: string): string {
  try {
    return JSON.stringify(canonical(JSON.parse(text)));
  } catch {
    return JSON.stringify(text);
  }
}

export interface ReplicaContents {
  /** Live rows keyed by their key columns' comparable values. */
  rows: Map<string, Record<string, string>>;
  tombstones: number;
  positions: Map<string, string>;
}

export async function replicaContents(
  uri: string,
  database: string,
  table: string,
  keyColumns: readonly string[],
  jsonColumns: readonly string[] = [],
): Promise<ReplicaContents> {
  const client = new MongoClient(uri);
  try {
    await client.connect();
    const rows = new Map<string, Record<string, string>>();
    const positions = new Map<string, string>();
    let tombstones = 0;
    for await (const doc of client.db(database).collection(table).find({})) {
      const meta = doc._tidemark as { pos: string; deleted?: boolean };
      if (meta.deleted) {
        tombstones++;
        continue;
      }
      const row: Record<string, string> = {};
      for (const [k, v] of Object.entries(doc)) {
        if (k === '_id' || k === '_tidemark') continue;
        row[k] = jsonColumns.includes(k) && typeof v === 'string' ? comparableJson(v) : comparable(v);
      }
      const key = JSON.stringify(keyColumns.map((c) => row[c]));
      rows.set(key, row);
      positions.set(key, meta.pos);
    }
    return { rows, tombstones, positions };
  } finally {
    await client.close();
  }
}

/** The source state in the same form as replicaContents().rows. */
export function comparableState(
  state: Map<string, Row>,
  keyColumns: readonly string[],
  jsonColumns: readonly string[] = [],
): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  for (const row of state.values()) {
    const c = comparableRow(row, jsonColumns);
    out.set(JSON.stringify(keyColumns.map((k) => c[k])), c);
  }
  return out;
}

export function diffStates(
  actual: Map<string, Record<string, string>>,
  expected: Map<string, Record<string, string>>,
): { missing: string[]; extra: string[]; different: string[] } {
  const missing = [...expected.keys()].filter((k) => !actual.has(k));
  const extra = [...actual.keys()].filter((k) => !expected.has(k));
  const different = [...actual.keys()].filter(
    (k) => expected.has(k) && JSON.stringify(actual.get(k)) !== JSON.stringify(expected.get(k)),
  );
  return { missing: missing.slice(0, 5), extra: extra.slice(0, 5), different: different.slice(0, 5) };
}

export interface ArchiveContents {
  entries: ManifestEntry[];
  events: ChangeEvent[];
  /** Per partition, where the files do not tile the offsets: "p0: 100 follows 97". */
  breaks: string[];
  /** Data files whose content disagrees with their manifest entry. */
  mismatches: string[];
}

/** Reads every manifest entry and data file of a table and checks they tile each partition from offset 0. */
export async function archiveContents(
  store: ObjectStore,
  prefix: string,
  db: string,
  table: string,
  keyring?: Keyring,
): Promise<ArchiveContents> {
  const entries: ManifestEntry[] = [];
  for await (const e of listManifestEntries(store, prefix, db, table)) entries.push(e);
  entries.sort((a, b) => a.partition - b.partition || (a.first_offset < b.first_offset ? -1 : 1));
  const breaks: string[] = [];
  const mismatches: string[] = [];
  const next = new Map<number, bigint>();
  const events: ChangeEvent[] = [];
  for (const e of entries) {
    const expected = next.get(e.partition) ?? 0n;
    if (e.first_offset !== expected)
      breaks.push(`p${e.partition}: ${e.first_offset} follows ${expected - 1n}`);
    next.set(e.partition, e.last_offset + 1n);
    const body = await readDataFile(store, e, keyring);
    const file = await readAvroFile(body, e.object_key);
    const codec = TableCodec.fromSchema(
      JSON.parse(file.metadata['tidemark.schema'] as string) as Record<string, unknown>,
    );
    if (BigInt(file.records.length) !== e.rows)
      mismatches.push(`${e.object_key}: ${file.records.length} rows, manifest ${e.rows}`);
    if (codec.version !== e.schema_fingerprint) mismatches.push(`${e.object_key}: schema ${codec.version}`);
    for (const record of file.records) events.push(codec.fromEnvelope(record as never));
  }
  return { entries, events, breaks, mismatches };
}
