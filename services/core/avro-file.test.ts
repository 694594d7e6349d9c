import { describe, expect, it } from 'vitest';
import { readAvroFile, writeAvroContainer, writeAvroFile } from './avro-file.js';
import { TableCodec } from './change-event.js';
import { TidemarkError } from './errors.js';
import { parseColumnType } from './table-schema.js';

const codec = new TableCodec({
  db: 'chat',
  table: 'messages',
  primaryKey: ['id'],
  columns: [
    ['id', 'bigint(20) unsigned'],
    ['room_id', 'int(11)'],
    ['amount', 'decimal(12,4)'],
    ['body', 'text'],
    ['sent_at', 'datetime(6)'],
  ].map(([n, t]) => parseColumnType(n as string, t as string)),
});

/** Envelope records as the archive holds them (what TableCodec encodes). */
const records = Array.from({ length: 5000 }, (_, i) => ({
  op: 'c',
  before: null,
  after: {
    id: String(18446744073709551615n - BigInt(i)),
    room_id: i % 7,
    amount: `${i}.0125`,
    body: `message ${i} 你好 👋`,
    sent_at: '2024-03-01 10:03:11.000001',
  },
  key: `["${18446744073709551615n - BigInt(i)}"]`,
  ts_ms: 1_709_287_391_000n + BigInt(i),
  pos: { file: 3n, offset: BigInt(4 + i * 100), row: 0n, gtid: null },
  tx: `0-1-${i}`,
  source: { server_id: 1n, db: 'chat', table: 'messages', schema_version: codec.version },
}));

describe('Avro container files', () => {
  it('round-trip envelope records exactly (bigint, decimal, text), with the schema and metadata in the header', async () => {
    const body = await writeAvroFile(codec.schema, records, {
      name: 'changes/x.avro',
      metadata: { 'tidemark.partition': '0' },
    });
    const file = await readAvroFile(body, 'changes/x.avro');
    expect(file.codec).toBe('deflate');
    expect(file.metadata['tidemark.partition']).toBe('0');
    expect(file.schema).toEqual(codec.schema);
    expect(file.records).toEqual(records);
  });

  it('writes the very same bytes for the same name and records (a re-run after a crash), other bytes for another name', async () => {
    const a = await writeAvroFile(codec.schema, records, { name: 'changes/x.avro' });
    const b = await writeAvroFile(codec.schema, records, { name: 'changes/x.avro' });
    const c = await writeAvroFile(codec.schema, records, { name: 'changes/y.avro' });
    expect(a.equals(b)).toBe(true);
    expect(a.equals(c)).toBe(false);
  });

  it('compresses with deflate by default', async () => {
    const deflated = await writeAvroFile(codec.schema, records, { name: 'n' });
    const plain = await writeAvroFile(codec.schema, records, { name: 'n', codec: 'null' });
    expect(deflated.length).toBeLessThan(plain.length / 3);
    expect((await readAvroFile(plain, 'n')).records).toEqual(records);
  });

  it('reports a damaged file by name instead of returning bad records', async () => {
    const body = await writeAvroFile(codec.schema, records, { name: 'n' });
    body[Math.floor(body.length / 2)] = (body[Math.floor(body.length / 2)] ?? 0) ^ 0xff;
    const err = await readAvroFile(body, 's3://b/changes/n.avro').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).message).toContain('s3://b/changes/n.avro is not a readable Avro file');
  });

  it('writes the same file from records already in Avro binary as from decoded records', async () => {
    const encoded = records.map((r) => codec.encode(codec.fromEnvelope(r as never)));
    const small = encoded.slice(0, 50);
    const fromRecords = await writeAvroFile(codec.schema, records.slice(0, 50), { name: 'k', codec: 'null' });
    const fromBinary = await writeAvroContainer(codec.schema, small, { name: 'k', codec: 'null' });
    expect(fromBinary.equals(fromRecords)).toBe(true);

    const big = await writeAvroContainer(codec.schema, encoded, {
      name: 'k2',
      blockBytes: 4096,
      deflateLevel: 1,
    });
    const read = await readAvroFile(big, 'k2');
    expect(read.codec).toBe('deflate');
    expect(read.records).toEqual(records);
    expect(JSON.parse(read.metadata['tidemark.schema'] as string)).toEqual(codec.schema);
  });
});
