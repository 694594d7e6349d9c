// Avro object-container files, the archive's data files: standard Avro (readable by Spark, Trino, DuckDB
// with its extension, fastavro…), deflate by default. The sync marker comes from the object's key, so a
// re-run after a crash writes the very same bytes (and the same SHA-256) for the same records.

import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { deflateRaw, inflateRaw } from 'node:zlib';
import { avro, avroType, type AvroSchema } from './avro.js';
import { TidemarkError } from './errors.js';

export type AvroCodec = 'deflate' | 'null';

type Callback = (err: Error | null, data?: Buffer) => void;
const CODECS = {
  deflate: (buf: Buffer, cb: Callback) => deflateRaw(buf, cb),
  null: (buf: Buffer, cb: Callback) => cb(null, buf),
};
const DECODERS = {
  deflate: (buf: Buffer, cb: Callback) => inflateRaw(buf, cb),
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

export async function writeAvroFile(
  schema: Record<string, unknown> | AvroSchema,
  records: readonly unknown[],
  o: WriteAvroFileOptions,
): Promise<Buffer> {
  const type = avroType(schema as AvroSchema);
  const syncMarker = createHash('sha256').update(`tidemark-sync:${o.name}`).digest().subarray(0, 16);
  const encoder = new avro.streams.BlockEncoder(type, {
    codec: o.codec ?? 'deflate',
    codecs: CODECS,
    syncMarker,
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

export interface AvroFile {
  schema: AvroSchema;
  codec: string;
  metadata: Record<string, string>;
  records: unknown[];
}

/** Reads a whole container file; damage is reported with the file's name, never returned as data. */
export async function readAvroFile(body: Buffer, name: string): Promise<AvroFile> {
  const decoder = new avro.streams.BlockDecoder({
    codecs: DECODERS,
    parseHook: (schema: AvroSchema) => avroType(schema),
  });
  const records: unknown[] = [];
  let header: { schema: AvroSchema; codec: string; metadata: Record<string, string> } | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      decoder.on('metadata', (type: avro.Type, codec: string, h: { meta: Record<string, Buffer> }) => {
        const metadata = Object.fromEntries(Object.entries(h.meta).map(([k, v]) => [k, v.toString()]));
        const text = metadata['tidemark.schema'] ?? metadata['avro.schema'] ?? 'null';
        header = { schema: JSON.parse(text) as AvroSchema, codec, metadata };
        void type;
      });
      decoder.on('data', (record: unknown) => records.push(record));
      decoder.on('end', resolve);
      decoder.on('error', reject);
      Readable.from([body]).pipe(decoder);
    });
  } catch (err) {
    throw new TidemarkError(
      'OBJECT_CORRUPT',
      `${name} is not a readable Avro file: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (!header) throw new TidemarkError('OBJECT_CORRUPT', `${name} has no Avro header`);
  return { ...header, records };
}
