// Avro object-container files, the archive's data files: standard Avro (readable by Spark, Trino, DuckDB
// with its extension, fastavro…), deflate by default. The sync marker comes from the object's key, so a
// re-run after a crash writes the very same bytes (and the same SHA-256) for the same records.

import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { deflateRaw, inflateRawSync } from 'node:zlib';
import { avro, avroType, type AvroSchema } from './avro.js';
import { TidemarkError } from './errors.js';

export type AvroCodec = 'deflate' | 'null';

const INFLATE_CHUNK = 2 * 1024 * 1024;

type Callback = (err: Error | null, data?: Buffer) => void;
const CODECS = {
  deflate: (buf: Buffer, cb: Callback) => deflateRaw(buf, cb),
  null: (buf: Buffer, cb: Callback) => cb(null, buf),
};

export interface WriteAvroFileOptions {
  codec?: AvroCodec;
  /** Names the file for its sync marker: the same name and records give the same bytes. */
  name: string;
  metadata?: Record<string, string>;
  /** Records per block. */
  blockRecords?: number;
}

/** A streaming container-file encoder: write records in, container bytes come out. */
export function avroFileEncoder(
  schema: Record<string, unknown> | AvroSchema,
  o: Omit<WriteAvroFileOptions, 'blockRecords'>,
): InstanceType<typeof avro.streams.BlockEncoder> {
  const type = avroType(schema as AvroSchema);
  return new avro.streams.BlockEncoder(type, {
    codec: o.codec ?? 'deflate',
    codecs: CODECS,
    syncMarker: syncMarkerOf(o.name),
    blockSize: 1 << 20,
    // avro.schema holds the schema as avsc exports it; tidemark.schema keeps it exactly as tidemark wrote
    // it, with the per-field attributes (tidemark.column, tidemark.type) readers rebuild codecs from.
    metadata: Object.fromEntries(
      Object.entries({ ...o.metadata, 'tidemark.schema': JSON.stringify(schema) }).map(([k, v]) => [
        k,
        Buffer.from(v),
      ]),
    ),
  } as unknown as ConstructorParameters<typeof avro.streams.BlockEncoder>[1]);
}

export async function writeAvroFile(
  schema: Record<string, unknown> | AvroSchema,
  records: readonly unknown[],
  o: WriteAvroFileOptions,
): Promise<Buffer> {
  const encoder = avroFileEncoder(schema, o);
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    encoder.on('data', (chunk: Buffer) => chunks.push(chunk));
    encoder.on('end', resolve);
    encoder.on('error', reject);
  });
  for (const record of records) encoder.write(record);
  encoder.end();
  await done;
  return Buffer.concat(chunks);
}

const MAGIC = Buffer.from('Obj\x01');
const METADATA_TYPE = avro.Type.forSchema({ type: 'map', values: 'bytes' });
const LONG_TYPE = avro.Type.forSchema('long');
const deflateRawAsync = promisify(deflateRaw);

export interface WriteAvroContainerOptions extends WriteAvroFileOptions {
  /** Uncompressed bytes per block. */
  blockBytes?: number;
  /** zlib level of the deflate codec (1 fastest … 9 smallest). */
  deflateLevel?: number;
}

function syncMarkerOf(name: string): Buffer {
  return createHash('sha256').update(`tidemark-sync:${name}`).digest().subarray(0, 16);
}

/**
 * A container file from records that are already Avro binary of `schema` (as they arrive from Kafka), so
 * the archive never decodes and re-encodes what it stores. Same framing, metadata and sync marker as
 * writeAvroFile; blocks are compressed off the main thread.
 */
export async function writeAvroContainer(
  schema: Record<string, unknown>,
  encoded: readonly Buffer[],
  o: WriteAvroContainerOptions,
): Promise<Buffer> {
  const codec = o.codec ?? 'deflate';
  const syncMarker = syncMarkerOf(o.name);
  // Key order as avsc writes it (avro.* first), so both writers give the same bytes.
  const type = avroType(schema as AvroSchema);
  const metadata: Record<string, Buffer> = {
    'avro.schema': Buffer.from(JSON.stringify(type.schema({ exportAttrs: true }))),
    'avro.codec': Buffer.from(codec),
  };
  for (const [k, v] of Object.entries(o.metadata ?? {})) metadata[k] = Buffer.from(v);
  metadata['tidemark.schema'] = Buffer.from(JSON.stringify(schema));
  const header = Buffer.concat([MAGIC, METADATA_TYPE.toBuffer(metadata), syncMarker]);

  const blockBytes = o.blockBytes ?? 1 << 20;
  const blocks: Promise<Buffer>[] = [];
  let start = 0;
  while (start < encoded.length) {
    let end = start;
    let size = 0;
    while (end < encoded.length && (end === start || size < blockBytes))
      size += (encoded[end++] as Buffer).length;
    const raw = Buffer.concat(encoded.slice(start, end), size);
    const count = end - start;
    blocks.push(
      (codec === 'deflate'
        ? deflateRawAsync(raw, { level: o.deflateLevel ?? 6 })
        : Promise.resolve(raw)
      ).then((data) =>
        Buffer.concat([LONG_TYPE.toBuffer(count), LONG_TYPE.toBuffer(data.length), data, syncMarker]),
      ),
    );
    start = end;
  }
  return Buffer.concat([header, ...(await Promise.all(blocks))]);
}

export interface AvroFile {
  schema: AvroSchema;
  codec: string;
  metadata: Record<string, string>;
  records: unknown[];
}

/** Reads a whole container file; damage is reported with the file's name, never returned as data. */
export function readAvroFile(body: Buffer, name: string): Promise<AvroFile> {
  try {
    const file = readAvroBlocks(body, name);
    const type = avroType(file.schema);
    const records: unknown[] = [];
    for (const { count, data } of file.blocks()) {
      let at = 0;
      for (let i = 0; i < count; i++) {
        const decoded = type.decode(data, at);
        const value: unknown = decoded.value;
        const offset = decoded.offset;
        if (offset < 0) {
          throw new TidemarkError(
            'OBJECT_CORRUPT',
            `${name} is not a readable Avro file: a record runs past its block`,
          );
        }
        records.push(value);
        at = offset;
      }
    }
    return Promise.resolve({ schema: file.schema, codec: file.codec, metadata: file.metadata, records });
  } catch (err) {
    if (err instanceof TidemarkError) return Promise.reject(err);
    return Promise.reject(
      new TidemarkError('OBJECT_CORRUPT', `${name} is not a readable Avro file: ${(err as Error).message}`, {
        cause: err,
      }),
    );
  }
}

export interface AvroBlocks {
  schema: AvroSchema;
  codec: string;
  metadata: Record<string, string>;
  /** Each block's records as raw Avro binary, decompressed: decode them one by one with `type.decode`. */
  blocks(): Generator<{ count: number; data: Buffer }>;
  /** The number of records, from the block headers alone (nothing is decompressed); sync markers checked. */
  countRecords(): number;
}

/**
 * Reads a container file block by block without a stream, so a reader can decode and drop one record at a
 * time (the fast path of restores). Damage is reported with the file's name.
 */
export function readAvroBlocks(body: Buffer, name: string): AvroBlocks {
  const corrupt = (why: string) =>
    new TidemarkError('OBJECT_CORRUPT', `${name} is not a readable Avro file: ${why}`);
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC)) throw corrupt('no Avro magic bytes');
  let at = 4;
  let meta: Record<string, Buffer>;
  try {
    const decoded = METADATA_TYPE.decode(body, at);
    if (decoded.offset < 0) throw new Error('truncated header');
    meta = decoded.value as Record<string, Buffer>;
    at = decoded.offset;
  } catch (err) {
    throw corrupt((err as Error).message);
  }
  const sync = body.subarray(at, at + 16);
  at += 16;
  const metadata = Object.fromEntries(Object.entries(meta).map(([k, v]) => [k, v.toString()]));
  const codec = metadata['avro.codec'] ?? 'null';
  if (codec !== 'null' && codec !== 'deflate') throw corrupt(`unknown codec ${codec}`);
  const schema = JSON.parse(metadata['tidemark.schema'] ?? metadata['avro.schema'] ?? 'null') as AvroSchema;
  const blockAt = (offset: number) => {
    const count = LONG_TYPE.decode(body, offset);
    const size = LONG_TYPE.decode(body, count.offset);
    if (count.offset < 0 || size.offset < 0) throw corrupt('truncated block header');
    const start = size.offset;
    const end = start + Number(size.value);
    if (end + 16 > body.length) throw corrupt('truncated block');
    if (!body.subarray(end, end + 16).equals(sync)) throw corrupt('bad sync marker');
    return { count: Number(count.value), start, end };
  };
  return {
    schema,
    codec,
    metadata,
    countRecords() {
      let n = 0;
      for (let next = at; next < body.length;) {
        const block = blockAt(next);
        n += block.count;
        next = block.end + 16;
      }
      return n;
    },
    *blocks() {
      while (at < body.length) {
        const { count, start, end } = blockAt(at);
        const raw = body.subarray(start, end);
        let data: Buffer;
        try {
          // Output in one piece for blocks up to 2 MiB (the default 16 KiB pieces are joined by a copy).
          data = codec === 'deflate' ? inflateRawSync(raw, { chunkSize: INFLATE_CHUNK }) : raw;
        } catch (err) {
          throw corrupt((err as Error).message);
        }
        at = end + 16;
        yield { count, data };
      }
    },
  };
}
