// Where things live in the archive. Keys are deterministic (the same data always lands under the same key)
// and Hive-style (dt=/hour=), so other engines can read the data files directly and readers can list only
// the days they need.

import { topicPart } from './kafka.js';

const OFFSET_DIGITS = 20;

export interface DataFileId {
  db: string;
  table: string;
  /** Event time that places the file (its first event's); files never cross an hour. */
  tsMs: number;
  partition: number;
  firstOffset: number | bigint;
  lastOffset: number | bigint;
}

/** A UTC time as names in the archive and restore targets carry it: `20260301T100312Z`. */
export function compactUtc(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

function day(tsMs: number): string {
  return new Date(tsMs).toISOString().slice(0, 10);
}

function hour(tsMs: number): string {
  return new Date(tsMs).toISOString().slice(11, 13);
}

/** Offsets are zero-padded so that key order is offset order within a partition. */
function fileName(f: DataFileId, extension: string): string {
  const pad = (n: number | bigint) => String(n).padStart(OFFSET_DIGITS, '0');
  return `${f.partition}-${pad(f.firstOffset)}-${pad(f.lastOffset)}.${extension}`;
}

export function tableDir(db: string, table: string): string {
  return `${topicPart(db)}.${topicPart(table)}`;
}

/** `<prefix>/changes/<db>.<table>/dt=YYYY-MM-DD/hour=HH/<partition>-<first>-<last>.avro` */
export function changeFileKey(prefix: string, f: DataFileId): string {
  return join(
    prefix,
    'changes',
    tableDir(f.db, f.table),
    `dt=${day(f.tsMs)}`,
    `hour=${hour(f.tsMs)}`,
    fileName(f, 'avro'),
  );
}

/** `<prefix>/manifests/<db>.<table>/dt=YYYY-MM-DD/<partition>-<first>-<last>.avro`: one entry per data file. */
export function manifestKey(prefix: string, f: DataFileId): string {
  return join(prefix, 'manifests', tableDir(f.db, f.table), `dt=${day(f.tsMs)}`, fileName(f, 'avro'));
}

/** The manifest prefixes to list for events between two times: one per day, so cost follows the days asked. */
export function manifestDayPrefixes(
  prefix: string,
  db: string,
  table: string,
  fromMs: number,
  toMs: number,
): string[] {
  const prefixes: string[] = [];
  const first = Date.UTC(
    new Date(fromMs).getUTCFullYear(),
    new Date(fromMs).getUTCMonth(),
    new Date(fromMs).getUTCDate(),
  );
  for (let t = first; t <= toMs; t += 86_400_000) {
    prefixes.push(`${join(prefix, 'manifests', tableDir(db, table), `dt=${day(t)}`)}/`);
  }
  return prefixes;
}

function join(...parts: string[]): string {
  return parts.filter((p) => p.length > 0).join('/');
}
