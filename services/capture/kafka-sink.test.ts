import { describe, expect, it } from 'vitest';
import { chunkMessages, decodeCheckpoint, encodeCheckpoint, type Checkpoint } from './kafka-sink.js';

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
