// tidemark patches kafkajs (patches/kafkajs+2.2.4.patch) to write an uncompressed record batch in one
// pass. The produce request must carry exactly the bytes kafkajs's own Record/RecordBatch encoders write.

import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const Long = require('kafkajs/src/utils/long') as { fromValue(v: number): unknown };
const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as (r: object) => unknown;
const { RecordBatch, encodeUncompressedRecordBatch } = require('kafkajs/src/protocol/recordBatch/v0') as {
  RecordBatch: (o: object) => Promise<{ buffer: Buffer }>;
  encodeUncompressedRecordBatch: (o: object) => { buffer: Buffer };
};

interface TestMessage {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: Record<string, string | Buffer | (string | Buffer)[]>;
  timestamp?: number;
}

async function kafkajsBatch(messages: TestMessage[], options: Record<string, unknown>, dateNow: number) {
  const first = options.firstTimestamp as number;
  const records = messages.map((message, i) =>
    Record({ ...message, offsetDelta: i, timestampDelta: (message.timestamp || dateNow) - first }),
  );
  return (await RecordBatch({ ...options, records, lastOffsetDelta: records.length - 1 })).buffer;
}

describe('kafkajs one-pass record batch (patch)', () => {
  it('writes the same bytes as kafkajs Record + RecordBatch', async () => {
    const dateNow = 1_763_000_000_000;
    const cases: TestMessage[][] = [
      [{ key: '["1"]', value: Buffer.from('v'), headers: { 'tidemark-schema': Buffer.from('abc') } }],
      Array.from({ length: 300 }, (_, i): TestMessage => ({
        key: i % 7 === 0 ? null : i % 2 ? `["${i}"]` : randomBytes(i % 40),
        value: i % 11 === 0 ? null : i % 3 ? randomBytes(i * 13) : `text 你好 👋 ${i}`,
        headers:
          i % 5 === 0
            ? {}
            : { 'tidemark-schema': Buffer.from(`v${i % 3}`), multi: ['a', Buffer.from('bb')], s: 'x' },
        ...(i % 4 === 0 ? { timestamp: dateNow - 5_000 + i } : {}),
      })),
      Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: 'x', timestamp: dateNow + 2 ** 40 + i })),
    ];
    for (const messages of cases) {
      for (const transactional of [false, true]) {
        const options = {
          firstTimestamp: dateNow - 10_000,
          maxTimestamp: dateNow,
          producerId: Long.fromValue(4242),
          producerEpoch: 3,
          firstSequence: 17,
          transactional,
        };
        const expected = await kafkajsBatch(messages, options, dateNow);
        const actual = encodeUncompressedRecordBatch({ ...options, messages, dateNow }).buffer;
        expect(actual.equals(expected)).toBe(true);
      }
    }
  });
});
