import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makePosition, readAvroFile, TableCodec, type Row } from '../../core/index.js';
import { DirTarget } from './dir-target.js';
import type { RestoredRow } from './target.js';

const codec = new TableCodec({
  db: 'chat',
  table: 'users',
  columns: [
    { name: 'id', type: 'bigint' },
    { name: 'name', type: 'varchar' },
    { name: 'balance', type: 'decimal', precision: 30, scale: 10 },
    { name: 'avatar', type: 'blob' },
    { name: 'seen_at', type: 'datetime', fsp: 6 },
  ],
  primaryKey: ['id'],
});

const rows: Row[] = [
  {
    id: 9_223_372_036_854_775_807n,
    name: 'Ada 👋 你好',
    balance: '12345678901234567890.0123456789',
    avatar: Buffer.from([0, 255, 7]),
    seen_at: '2026-03-01 10:03:12.123456',
  },
  { id: -1n, name: '', balance: null, avatar: null, seen_at: null },
  {
    id: 2n,
    name: 'quote " and, comma\nnewline',
    balance: '-0.0000000001',
    avatar: Buffer.alloc(0),
    seen_at: '0000-00-00 00:00:00.000000',
  },
];

function restored(): RestoredRow[] {
  return rows.map((row, i) => ({
    key: String(row.id),
    row,
    slot: { pos: makePosition(1, 100 + i), tsMs: 0, op: 'c', tx: null, row, version: codec.version },
  }));
}

async function write(format: 'jsonl' | 'csv' | 'avro'): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-dir-target-'));
  const target = new DirTarget(dir, format, Date.UTC(2026, 2, 1));
  await target.check(['chat.users'], false);
  const sink = await target.openTable('chat.users', codec, false);
  await sink.write(restored());
  expect((await sink.end()).rows).toBe(3);
  return join(dir, `chat.users.${format}`);
}

describe('DirTarget', () => {
  it('writes JSON Lines with exact values: int64 as digits, decimals and times as text, bytes as base64', async () => {
    const lines = readFileSync(await write('jsonl'), 'utf8')
      .trim()
      .split('\n');
    expect(lines[0]).toBe(
      '{"id":9223372036854775807,"name":"Ada 👋 你好","balance":"12345678901234567890.0123456789","avatar":"AP8H","seen_at":"2026-03-01 10:03:12.123456"}',
    );
    expect(JSON.parse(lines[1]!)).toEqual({ id: -1, name: '', balance: null, avatar: null, seen_at: null });
  });

  it('writes CSV that tells NULL (empty) from an empty string (quoted)', async () => {
    const text = readFileSync(await write('csv'), 'utf8');
    const [header, first, second] = text.split('\n');
    expect(header).toBe('id,name,balance,avatar,seen_at');
    expect(first).toBe(
      '9223372036854775807,Ada 👋 你好,12345678901234567890.0123456789,AP8H,2026-03-01 10:03:12.123456',
    );
    expect(second).toBe('-1,"",,,');
    expect(text).toContain('"quote "" and, comma\nnewline"');
  });

  it('writes Avro with the table row schema, values read back exactly', async () => {
    const path = await write('avro');
    const file = await readAvroFile(readFileSync(path), path);
    expect(file.records).toEqual(rows);
  });

  it('refuses to write over an earlier restore, and keeps it aside with force', async () => {
    const path = await write('jsonl');
    const dir = join(path, '..');
    const again = new DirTarget(dir, 'jsonl', Date.UTC(2026, 2, 1, 10, 3, 12));
    await expect(again.check(['chat.users'], false)).rejects.toMatchObject({ code: 'TARGET_NOT_EMPTY' });
    const sink = await again.openTable('chat.users', codec, true);
    await sink.write(restored().slice(0, 1));
    const done = await sink.end();
    expect(done.keptAside).toBe(join(dir, 'chat.users.jsonl_before_20260301T100312Z'));
    expect(readFileSync(done.keptAside!, 'utf8').trim().split('\n')).toHaveLength(3);
    expect(readFileSync(path, 'utf8').trim().split('\n')).toHaveLength(1);
  });
});
