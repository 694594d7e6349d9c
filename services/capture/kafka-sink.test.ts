import { describe, expect, it } from 'vitest';
import {
  BatchBuilder,
  chunkMessages,
  decodeCheckpoint,
  encodeCheckpoint,
  type Checkpoint,
} from './kafka-sink.js';

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
  const FIELDS = 6;
  const valueWriter = (value: Buffer) => (buf: Buffer, pos: number) =>
    pos + value.length <= buf.length ? pos + value.copy(buf, pos) : buf.length - (pos + value.length);

  function records(batch: ReturnType<BatchBuilder['take']>) {
    const bytes = Buffer.from(batch.data);
    const out: { topic: string; key: string; value: Buffer; header: string }[] = [];
    for (let i = 0; i < batch.index.length; i += FIELDS) {
      const [t, ks, kl, vs, vl, h] = Array.from(batch.index.subarray(i, i + FIELDS));
      out.push({
        topic: batch.topics[t!]!,
        key: bytes.toString('utf8', ks, ks! + kl!),
        value: Buffer.from(bytes.subarray(vs, vs! + vl!)),
        header: batch.headerValues[h!]!,
      });
    }
    return out;
  }

  it('packs keys, values, topics and headers, grows for large values and starts empty after take', () => {
    const builder = new BatchBuilder();
    const want: { topic: string; key: string; value: Buffer; header: string }[] = [];
    for (let i = 0; i < 3000; i++) {
      const topic = i % 3 === 0 ? 'tm.chat.rooms' : 'tm.chat.messages';
      const key = i % 7 === 0 ? `["房间 ${i} 👋"]` : `[${i}]`;
      const value = Buffer.alloc(i === 1500 ? 3 << 20 : 50 + (i % 200), i % 251);
      const header = i % 5 === 0 ? 'v2' : 'v1';
      const size = builder.add(topic, key, header, valueWriter(value), 8 << 20);
      expect(size).toBe(Buffer.byteLength(key) + value.length);
      want.push({ topic, key, value, header });
    }
    // Over the limit: reported, not kept.
    expect(builder.add('tm.chat.rooms', '[1]', 'v1', valueWriter(Buffer.alloc(1000)), 500)).toBe(1003);
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
});
