import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256Hex, TableCodec, writeAvroFile } from '../core/index.js';
import { DecodePool, LocalDecoder } from './decode-pool.js';
import type { DecodeJob, ProjectedColumn } from './file-decoder.js';

const codec = new TableCodec({
  db: 'chat',
  table: 'messages',
  columns: [
    { name: 'id', type: 'bigint' },
    { name: 'room_id', type: 'int' },
    { name: 'body', type: 'text' },
  ],
  primaryKey: ['id'],
});

const dir = mkdtempSync(join(tmpdir(), 'tm-decode-'));

/** A data file of `ids` (positions follow the order given), and a job reading `columns` from it. */
async function file(name: string, ids: number[], columns: ProjectedColumn[], over: Partial<DecodeJob> = {}) {
  // Envelope records as the archive holds them.
  const records = ids.map((id) => ({
    op: id % 3 === 0 ? 'd' : 'c',
    before: id % 3 === 0 ? { id: BigInt(id), room_id: id % 2, body: `gone ${id}` } : null,
    after: id % 3 === 0 ? null : { id: BigInt(id), room_id: id % 2, body: id === 4 ? null : `m${id}` },
    key: `["${id}"]`,
    ts_ms: BigInt(1000 * id),
    pos: { file: 1n, offset: BigInt(100 + 10 * id), row: 0n, gtid: null },
    tx: null,
    source: { server_id: 1n, db: 'chat', table: 'messages', schema_version: codec.version },
  }));
  const body = await writeAvroFile(codec.schema, records, { name });
  const path = join(dir, name);
  writeFileSync(path, body);
  const job: DecodeJob = {
    path,
    objectKey: name,
    sha256: sha256Hex(body),
    keyId: null,
    rows: ids.length,
    after: undefined,
    fromMs: undefined,
    toMs: undefined,
    columns,
    countOnly: false,
    dedupe: true,
    ...over,
  };
  return job;
}

const pool = new DecodePool(undefined, 2);
afterAll(() => pool.close());

describe('decoding archive files for a scan', () => {
  for (const [name, decoder] of [
    ['in workers', pool],
    ['in process', new LocalDecoder(undefined)],
  ] as const) {
    it(`gives the projected columns, drops re-sent changes, in file order (${name})`, async () => {
      const columns: ProjectedColumn[] = [
        { kind: 'meta', meta: 'op' },
        { kind: 'row', column: 'room_id', physical: 'int' },
        { kind: 'row', column: 'id', physical: 'bigint' },
        { kind: 'row', column: 'body', physical: 'text' },
        { kind: 'none' },
      ];
      const a = await file(`a-${name}`, [1, 2, 3, 4, 2, 5], columns);
      const b = await file(`b-${name}`, [5, 6, 7], columns, {
        after: '0000000001-00000000000150-000000000000',
      });
      const channel = decoder.channel();
      channel.submit(0, a);
      channel.submit(1, b);
      const first = channel.take(0, 'a');
      const second = channel.take(1, 'b');
      channel.close();
      expect(first.rows).toBe(5);
      expect(first.columns[4]).toBeNull();
      const op = first.columns[0]!;
      expect(op.kind === 'f64' && [...op.values]).toEqual([0, 0, 2, 0, 0]);
      const body = first.columns[3]!;
      expect(body.kind === 'any' && body.values).toEqual(['m1', 'm2', 'gone 3', null, 'm5']);
      const id = first.columns[2]!;
      expect(id.kind === 'i64' && [...id.values]).toEqual([1n, 2n, 3n, 4n, 5n]);
      // The second file starts below what the first reached: its 5 is a re-send.
      expect(second.rows).toBe(2);
    });

    it(`counts without decoding when asked, and names a damaged file (${name})`, async () => {
      const count = await file(`c-${name}`, [1, 2, 3], [{ kind: 'none' }], { countOnly: true });
      const bad = await file(`d-${name}`, [1, 2], [{ kind: 'none' }], { sha256: '0'.repeat(64) });
      const short = await file(`e-${name}`, [1, 2], [{ kind: 'none' }], { rows: 3, countOnly: true });
      const channel = decoder.channel();
      channel.submit(0, count);
      channel.submit(1, bad);
      channel.submit(2, short);
      expect(channel.take(0, 'c').rows).toBe(3);
      expect(() => channel.take(1, 'd')).toThrow(/SHA-256/);
      expect(() => channel.take(2, 'e')).toThrow(/holds 2 events, its manifest says 3/);
      channel.close();
    });
  }
});
