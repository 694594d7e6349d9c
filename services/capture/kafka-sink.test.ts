import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import {
  BatchBuilder,
  chunkMessages,
  decodeCheckpoint,
  encodeCheckpoint,
  type Checkpoint,
} from './kafka-sink.js';

const require = createRequire(import.meta.url);
const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as (r: object) => unknown;
const { RecordBatch, encodeUncompressedRecordBatch } = require('kafkajs/src/protocol/recordBatch/v0') as {
  RecordBatch: (o: object) => Promise<{ buffer: Buffer }>;
  encodeUncompressedRecordBatch: (o: object) => { buffer: Buffer };
};

describe('chunkMessages', () => {
  it('keeps every message once, in order per topic, with no chunk far over the limit', () => {
    const value = Buffer.alloc(100);
    const topics = ['a', 'b', 'c'].map((topic, t) => ({
      topic,
      messages: Array.from({ length: 50 + t * 30 }, (_, i) => ({ key: `${topic}${i}`, value })),
    }));
    const chunks = chunkMessages(topics, 1000);
    expect(chunks.length).toBeGreaterThan(10);
    for (const topic of ['a', 'b', 'c']) {
      const keys = chunks.flatMap((c) =>
        c.filter((t) => t.topic === topic).flatMap((t) => t.messages.map((m) => m.key)),
      );
      expect(keys).toEqual(topics.find((t) => t.topic === topic)?.messages.map((m) => m.key));
    }
    for (const chunk of chunks) {
      const bytes = chunk.flatMap((t) => t.messages).reduce((n, m) => n + 64 + (m.key?.length ?? 0) + 100, 0);
      expect(bytes).toBeLessThanOrEqual(1000 + 200);
      expect(chunk.every((t) => t.messages.length > 0)).toBe(true);
    }
  });

  it('sends a single message larger than the limit on its own', () => {
    const chunks = chunkMessages(
      [
        {
          topic: 't',
          messages: [
            { key: 'small', value: Buffer.alloc(10) },
            { key: 'big', value: Buffer.alloc(5000) },
          ],
        },
      ],
      1000,
    );
    expect(chunks.map((c) => c.flatMap((t) => t.messages.map((m) => m.key)))).toEqual([['small'], ['big']]);
  });
});

describe('checkpoint records', () => {
  it('round-trip, including the snapshot progress and positions beyond 4 GiB', () => {
    const checkpoint: Checkpoint = {
      captureId: 'chat-main',
      phase: 'snapshot',
      binlogFile: 'mariadb-bin.000042',
      binlogOffset: 5_000_000_123,
      gtidSet: '0-1-99',
      tsMs: 1_709_287_391_000,
      writtenMs: 1_709_287_392_000,
      snapshot: {
        binlogFile: 'mariadb-bin.000043',
        binlogOffset: 4,
        tables: ['chat.messages'],
        completed: false,
      },
    };
    expect(decodeCheckpoint(encodeCheckpoint(checkpoint))).toEqual(checkpoint);
  });
});

describe('BatchBuilder', () => {
  const FIELDS = 5;
  const HEADER = 'tidemark.schema';
  const valueWriter = (value: Buffer) => (buf: Buffer, pos: number) =>
    pos + value.length <= buf.length ? pos + value.copy(buf, pos) : buf.length - (pos + value.length);

  /** Reads a packed record (key, value, headers with their zigzag varint lengths) back. */
  function unpackRecord(bytes: Buffer, at: number, end: number) {
    const varint = () => {
      let z = 0;
      let mul = 1;
      let b: number;
      do {
        b = bytes[at++]!;
        z += (b & 0x7f) * mul;
        mul *= 128;
      } while (b & 0x80);
      return z / 2;
    };
    const take = (n: number) => bytes.subarray((at += n) - n, at);
    const key = take(varint());
    const value = Buffer.from(take(varint()));
    const headers: Record<string, string> = {};
    for (let n = varint(); n > 0; n--) {
      const name = take(varint()).toString();
      headers[name] = take(varint()).toString();
    }
    expect(at).toBe(end);
    return { key, value, headers };
  }

  function records(batch: ReturnType<BatchBuilder['take']>) {
    const bytes = Buffer.from(batch.data);
    const out: { topic: string; key: string; value: Buffer; header: string }[] = [];
    for (let i = 0; i < batch.index.length; i += FIELDS) {
      const [t, ks, kl, ps, pl] = Array.from<number>(batch.index.subarray(i, i + FIELDS));
      const packed = unpackRecord(bytes, ps!, ps! + pl!);
      expect(packed.key.equals(bytes.subarray(ks, ks! + kl!))).toBe(true);
      expect(Object.keys(packed.headers)).toEqual([HEADER]);
      out.push({
        topic: batch.topics[t!]!,
        key: packed.key.toString(),
        value: packed.value,
        header: packed.headers[HEADER]!,
      });
    }
    return out;
  }

  it('packs keys, values, topics and headers, grows for large values and starts empty after take', () => {
    const builder = new BatchBuilder(HEADER);
    const want: { topic: string; key: string; value: Buffer; header: string }[] = [];
    for (let i = 0; i < 3000; i++) {
      const topic = i % 3 === 0 ? 'tm.chat.rooms' : 'tm.chat.messages';
      // Keys and values around the sizes where their lengths take another byte.
      const key =
        i % 7 === 0 ? `["房间 ${i} 👋"]` : i % 11 === 0 ? `["${'k'.repeat(60 + (i % 9))}"]` : `[${i}]`;
      const size =
        i === 1500 ? 3 << 20 : i % 13 === 0 ? 8180 + (i % 20) : i % 17 === 0 ? 55 + (i % 15) : 50 + (i % 200);
      const value = Buffer.alloc(size, i % 251);
      const header = i % 5 === 0 ? 'v2' : 'v1';
      const packed = builder.add(topic, key, header, valueWriter(value), 8 << 20);
      expect(packed).toBeGreaterThan(Buffer.byteLength(key) + value.length + HEADER.length);
      want.push({ topic, key, value, header });
    }
    // Over the limit: reported, not kept.
    expect(builder.add('tm.chat.rooms', '[1]', 'v1', valueWriter(Buffer.alloc(1000)), 500)).toBeGreaterThan(
      1003,
    );
    expect(builder.count).toBe(3000);
    const got = records(builder.take([], []));
    const meta = (r: (typeof want)[number]) => ({
      topic: r.topic,
      key: r.key,
      header: r.header,
      size: r.value.length,
    });
    expect(got.map(meta)).toEqual(want.map(meta));
    expect(got.filter((r, i) => !r.value.equals(want[i]!.value)).map(meta)).toEqual([]);
    expect(builder.count).toBe(0);
    builder.add('tm.chat.users', '["ü"]', 'v9', valueWriter(Buffer.from('x')), 100);
    expect(records(builder.take([], []))).toEqual([
      { topic: 'tm.chat.users', key: '["ü"]', value: Buffer.from('x'), header: 'v9' },
    ]);
  });

  it('gives kafkajs record batches the bytes of its own encoder for the same messages', async () => {
    const builder = new BatchBuilder(HEADER);
    const plain: { key: Buffer; value: Buffer; headers: Record<string, string> }[] = [];
    for (let i = 0; i < 500; i++) {
      const key = i % 7 === 0 ? `["房间 ${i}"]` : `[${i}]`;
      const value = Buffer.alloc(i % 50 === 0 ? 20_000 : 30 + i * 7, i % 251);
      const header = `v${i % 3}`;
      builder.add('t', key, header, valueWriter(value), 1 << 30);
      plain.push({ key: Buffer.from(key), value, headers: { [HEADER]: header } });
    }
    const batch = builder.take([], []);
    const bytes = Buffer.from(batch.data);
    const packed = [];
    for (let i = 0; i < batch.index.length; i += FIELDS) {
      const [, ks, kl, ps, pl] = Array.from<number>(batch.index.subarray(i, i + FIELDS));
      packed.push({
        key: bytes.subarray(ks, ks! + kl!),
        value: bytes.subarray(ps, ps! + pl!),
        packedRecord: true,
      });
    }
    const options = {
      firstTimestamp: 1_763_000_000_000,
      maxTimestamp: 1_763_000_000_000,
      dateNow: 1_763_000_000_000,
    };
    const records = plain.map((m, i) => Record({ ...m, offsetDelta: i, timestampDelta: 0 }));
    const theirs = (await RecordBatch({ ...options, records, lastOffsetDelta: records.length - 1 })).buffer;
    expect(encodeUncompressedRecordBatch({ ...options, messages: packed }).buffer.equals(theirs)).toBe(true);
    expect(encodeUncompressedRecordBatch({ ...options, messages: plain }).buffer.equals(theirs)).toBe(true);
  });
});
