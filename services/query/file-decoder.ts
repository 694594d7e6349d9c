// Decoding one archive file for a scan: checked against its SHA-256, decrypted, decompressed and decoded
// with a reader schema holding only the fields the query uses (Avro schema resolution skips the rest), then
// deduplicated by position and cut to --from/--to, into one array per projected column. Runs in the decode
// workers, so files are decoded on every core while DuckDB's thread takes them in order.

import { readFileSync } from 'node:fs';
// Only the core modules decoding needs, so a worker starts without the Kafka, MongoDB and S3 clients.
import { avroType, type AvroType } from '../core/avro.js';
import { readAvroBlocks, type AvroBlocks } from '../core/avro-file.js';
import { rowSchema, TableCodec, type RowValue } from '../core/change-event.js';
import { decrypt, isEncrypted, type Keyring } from '../core/encryption.js';
import { TidemarkError } from '../core/errors.js';
import { verifySha256 } from '../core/object-store/store.js';
import { formatPosition, parsePosition } from '../core/position.js';

export type Physical = 'int' | 'bigint' | 'float' | 'double' | 'text' | 'blob';

/** One output column of a scan: a field of the change, a column of the row, or a placeholder (no values). */
export type ProjectedColumn =
  | { kind: 'meta'; meta: 'op' | 'ts' | 'pos' | 'tx' | 'key' }
  | { kind: 'row'; column: string; physical: Physical }
  | { kind: 'none' };

export interface DecodeJob {
  path: string;
  objectKey: string;
  sha256: string;
  keyId: string | null;
  rows: number;
  /** The highest position of the files before this one in its partition. */
  after: string | undefined;
  /** Inclusive event-time bounds, when the file straddles --from/--to. */
  fromMs: number | undefined;
  toMs: number | undefined;
  columns: ProjectedColumn[];
  /**
   * Only the number of events is wanted and the manifest vouches that none of them is a re-send (positions
   * ascend through the file, above every earlier file of the partition): the blocks are counted, not decoded.
   */
  countOnly: boolean;
  /** Some change may be a re-send (unknown or unordered positions): positions are decoded and compared. */
  dedupe: boolean;
}

/**
 * One column of a decoded file: numbers in a Float64Array and 64-bit integers in a BigInt64Array (moved to
 * the scan without copying), with a null flag per row where there are NULLs; other values as they are.
 */
export type ColumnValues =
  | { kind: 'f64'; values: Float64Array; nulls: Uint8Array | null }
  | { kind: 'i64'; values: BigInt64Array; nulls: Uint8Array | null }
  | { kind: 'any'; values: (RowValue | Uint8Array)[] };

/** A column being filled: typed storage sized for the file's events, trimmed when done. */
class ColumnBuilder {
  private readonly f64: Float64Array | undefined;
  private readonly i64: BigInt64Array | undefined;
  private nulls: Uint8Array | null = null;
  private readonly any: (RowValue | Uint8Array)[] | undefined;
  private n = 0;

  constructor(
    kind: 'f64' | 'i64' | 'any',
    private readonly capacity: number,
  ) {
    if (kind === 'f64') this.f64 = new Float64Array(capacity);
    else if (kind === 'i64') this.i64 = new BigInt64Array(capacity);
    else this.any = [];
  }

  push(v: RowValue | Uint8Array): void {
    const i = this.n++;
    if (this.any) {
      this.any.push(v);
      return;
    }
    if (v === null) {
      (this.nulls ??= new Uint8Array(this.capacity))[i] = 1;
      return;
    }
    if (this.f64) this.f64[i] = v as number;
    else (this.i64 as BigInt64Array)[i] = v as bigint;
  }

  done(): ColumnValues {
    const nulls = this.nulls ? this.nulls.subarray(0, this.n) : null;
    if (this.f64) return { kind: 'f64', values: this.f64.subarray(0, this.n), nulls };
    if (this.i64) return { kind: 'i64', values: this.i64.subarray(0, this.n), nulls };
    return { kind: 'any', values: this.any as (RowValue | Uint8Array)[] };
  }
}

function builderKind(c: ProjectedColumn): 'f64' | 'i64' | 'any' {
  if (c.kind === 'meta') return c.meta === 'op' || c.meta === 'ts' ? 'f64' : 'any';
  if (c.kind === 'row') {
    if (c.physical === 'int' || c.physical === 'float' || c.physical === 'double') return 'f64';
    if (c.physical === 'bigint') return 'i64';
  }
  return 'any';
}

/** The buffers a decoded file can hand over without copying. */
export function transferables(file: DecodedFile): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const c of file.columns) {
    if (!c || c.kind === 'any') continue;
    out.add(c.values.buffer as ArrayBuffer);
    if (c.nulls) out.add(c.nulls.buffer as ArrayBuffer);
  }
  return [...out];
}

export interface DecodedFile {
  /** Rows kept (after dedupe and the time window). */
  rows: number;
  /** Per projected column its values, or null for a placeholder. */
  columns: (ColumnValues | null)[];
}

export const OP_CODES: Record<string, number> = { c: 0, u: 1, d: 2, r: 3 };

interface Envelope {
  op?: string;
  before?: Record<string, RowValue> | null;
  after?: Record<string, RowValue> | null;
  key?: string;
  ts_ms?: bigint;
  pos: { file: bigint; offset: bigint; row: bigint };
  tx?: string | null;
}

interface VersionReader {
  type: AvroType;
  resolver: unknown;
  /** Per projected column: the Avro field of the row that holds it in this version (undefined: NULL). */
  fields: (string | undefined)[];
}

/** A row value as the DuckDB column of its physical type takes it (older schema versions may differ). */
export const toPhysical: Record<Physical, (v: RowValue) => RowValue | Uint8Array> = {
  int: (v) => (v === null || typeof v === 'number' ? v : Number(v)),
  bigint: (v) => (v === null || typeof v === 'bigint' ? v : BigInt(typeof v === 'number' ? v : String(v))),
  float: (v) => (v === null || typeof v === 'number' ? v : Number(v)),
  double: (v) => (v === null || typeof v === 'number' ? v : Number(v)),
  text: (v) =>
    v === null || typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : String(v),
  blob: (v) => (v === null ? null : Buffer.isBuffer(v) ? v : Buffer.from(String(v))),
};

export class FileDecoder {
  private readonly readers = new Map<string, VersionReader>();

  constructor(private readonly keyring: Keyring | undefined) {}

  private body(job: DecodeJob): Buffer {
    const stored = readFileSync(job.path);
    verifySha256(job.path, job.objectKey, stored, job.sha256);
    if (!isEncrypted(stored)) return stored;
    if (!this.keyring) {
      throw new TidemarkError(
        'KEY_MISSING',
        `${job.objectKey} is encrypted (key "${job.keyId}") and no keys are configured`,
        { hint: 'configure tier.cold.encryption.keys with the master key that wrote the archive' },
      );
    }
    return decrypt(stored, this.keyring, job.objectKey);
  }

  /** A reader of one schema version with only the fields the columns need; one per version and projection. */
  private readerFor(
    avro: AvroBlocks,
    columns: readonly ProjectedColumn[],
    needs: { pos: boolean; ts: boolean },
    name: string,
  ): VersionReader {
    const text = avro.metadata['tidemark.schema'] ?? JSON.stringify(avro.schema);
    const cacheKey = `${JSON.stringify(columns)} ${needs.pos} ${needs.ts}\n${text}`;
    const known = this.readers.get(cacheKey);
    if (known) return known;
    const schema = avro.schema as Record<string, unknown>;
    const codec = TableCodec.fromSchema(schema);
    const { schema: row, fields: avroFields } = rowSchema(codec.table);
    const byColumn = new Map(codec.table.columns.map((c, i) => [c.name, avroFields[i] as string]));
    const fields = columns.map((c) => (c.kind === 'row' ? byColumn.get(c.column) : undefined));
    const wanted = new Set(fields.filter((f): f is string => f !== undefined));
    const has = (meta: string) => columns.some((c) => c.kind === 'meta' && c.meta === meta);
    const writerFields = schema.fields as Record<string, unknown>[];
    const keep = (n: string) => writerFields.find((f) => f.name === n) as Record<string, unknown>;
    const readerFields: Record<string, unknown>[] = [];
    if (has('op')) readerFields.push(keep('op'));
    if (columns.some((c) => c.kind === 'row')) {
      const rowFields = (row.fields as Record<string, unknown>[]).filter((f) => wanted.has(String(f.name)));
      readerFields.push(
        { name: 'before', type: ['null', { ...row, fields: rowFields }], default: null },
        { name: 'after', type: ['null', 'tidemark.Row'], default: null },
      );
    }
    if (has('key')) readerFields.push(keep('key'));
    // Positions and times are decoded only when something needs them (they are 64-bit: costly).
    if (needs.ts) readerFields.push(keep('ts_ms'));
    if (needs.pos) readerFields.push(keep('pos'));
    if (has('tx')) readerFields.push(keep('tx'));
    const reader = avroType({ ...schema, fields: readerFields } as never);
    let resolver: unknown;
    try {
      resolver = reader.createResolver(avroType(schema as never));
    } catch (err) {
      throw new TidemarkError(
        'OBJECT_CORRUPT',
        `${name}: its schema cannot be read: ${(err as Error).message}`,
      );
    }
    const made = { type: reader, resolver, fields };
    this.readers.set(cacheKey, made);
    return made;
  }

  decode(job: DecodeJob): DecodedFile {
    const name = job.objectKey;
    const avro = readAvroBlocks(this.body(job), name);
    if (job.countOnly) {
      const counted = avro.countRecords();
      if (counted !== job.rows) {
        throw new TidemarkError(
          'OBJECT_CORRUPT',
          `${name} holds ${counted} events, its manifest says ${job.rows}`,
        );
      }
      return { rows: counted, columns: job.columns.map(() => null) };
    }
    const { fromMs, toMs } = job;
    const trim = fromMs !== undefined || toMs !== undefined;
    const wants = (meta: string) => job.columns.some((c) => c.kind === 'meta' && c.meta === meta);
    const reader = this.readerFor(
      avro,
      job.columns,
      { pos: job.dedupe || wants('pos'), ts: trim || wants('ts') },
      name,
    );
    const type = reader.type as unknown as {
      decode(b: Buffer, at: number, r: unknown): { value: unknown; offset: number };
    };
    const columns: (ColumnBuilder | null)[] = job.columns.map((c) =>
      c.kind === 'none' ? null : new ColumnBuilder(builderKind(c), job.rows),
    );
    let maxFile = -1n;
    let maxOffset = -1n;
    let maxRow = -1n;
    if (job.after !== undefined) {
      const p = parsePosition(job.after);
      maxFile = BigInt(p.file);
      maxOffset = BigInt(p.offset);
      maxRow = BigInt(p.row);
    }
    let decoded = 0;
    let rows = 0;
    for (const block of avro.blocks()) {
      let at = 0;
      for (let i = 0; i < block.count; i++) {
        let result: { value: unknown; offset: number };
        try {
          result = type.decode(block.data, at, reader.resolver);
        } catch (err) {
          throw new TidemarkError(
            'OBJECT_CORRUPT',
            `${name}: record ${decoded} does not decode: ${(err as Error).message}`,
          );
        }
        if (result.offset < 0) {
          throw new TidemarkError('OBJECT_CORRUPT', `${name}: a record runs past its block`);
        }
        at = result.offset;
        decoded++;
        const e = result.value as Envelope;
        if (job.dedupe) {
          const { file: pf, offset: po, row: pr } = e.pos;
          // At or below the highest position seen in the partition: a re-send.
          if (pf < maxFile || (pf === maxFile && (po < maxOffset || (po === maxOffset && pr <= maxRow)))) {
            continue;
          }
          maxFile = pf;
          maxOffset = po;
          maxRow = pr;
        }
        if (trim) {
          const ts = Number(e.ts_ms);
          if ((fromMs !== undefined && ts < fromMs) || (toMs !== undefined && ts > toMs)) continue;
        }
        const row = e.after ?? e.before ?? null;
        for (let j = 0; j < columns.length; j++) {
          const out = columns[j];
          if (!out) continue;
          const c = job.columns[j] as ProjectedColumn;
          if (c.kind === 'row') {
            const field = reader.fields[j];
            out.push(field === undefined || row === null ? null : toPhysical[c.physical](row[field] ?? null));
          } else if (c.kind === 'meta') {
            switch (c.meta) {
              case 'op':
                out.push(OP_CODES[e.op as string] ?? null);
                break;
              case 'ts':
                out.push(Number(e.ts_ms));
                break;
              case 'pos':
                out.push(
                  formatPosition({
                    file: Number(e.pos.file),
                    offset: Number(e.pos.offset),
                    row: Number(e.pos.row),
                  }),
                );
                break;
              case 'tx':
                out.push(e.tx ?? null);
                break;
              case 'key':
                out.push(e.key ?? null);
                break;
            }
          }
        }
        rows++;
      }
    }
    if (decoded !== job.rows) {
      throw new TidemarkError(
        'OBJECT_CORRUPT',
        `${name} holds ${decoded} events, its manifest says ${job.rows}`,
      );
    }
    return { rows, columns: columns.map((c) => c?.done() ?? null) };
  }
}
