// tidemark patches kafkajs (patches/kafkajs+2.2.4.patch) to write an uncompressed record batch in one
// pass, and to decode records with numbers rather than a Long per field. The produce request must carry
// exactly the bytes kafkajs's own Record/RecordBatch encoders write, and decoding must give what was written.

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
const Decoder = require('kafkajs/src/protocol/decoder') as new (b: Buffer) => object;
const decodeBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder') as (d: object) => Promise<{
  records: {
    offset: string;
    timestamp: string;
    key: Buffer | null;
    value: Buffer | null;
    headers: Record<string, Buffer | Buffer[]>;
  }[];
}>;

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

describe('kafkajs record decoding (patch)', () => {
  it('gives every record its offset, timestamp, key, value and headers as kafkajs always did', async () => {
    const now = 1_763_000_000_000;
    const messages: TestMessage[] = Array.from({ length: 200 }, (_, i) => ({
      key: i % 9 === 0 ? null : `["${i}"]`,
      value: i % 13 === 0 ? null : Buffer.from(`value ${i} 你好`),
      headers:
        i % 4 === 0
          ? {}
          : {
              'tidemark.schema': `v${i % 3}`,
              twice: ['a', 'b'],
              ...(i % 7 === 0 ? { __proto__x: 'p' } : {}),
            },
      // Deltas below and above the first timestamp, and some beyond 2^48 ms (read as Long).
      timestamp: i % 50 === 49 ? now + 2 ** 49 + i : now - 100_000 + i * 997,
    }));
    for (const firstOffset of ['0', '123456789', String(2 ** 53 + 10), '9223372036854775000']) {
      const encoded = encodeUncompressedRecordBatch({
        messages,
        dateNow: now,
        firstTimestamp: now - 50_000,
        maxTimestamp: now,
        firstSequence: 0,
      }).buffer;
      // A fetched batch starts with its base offset.
      encoded.writeBigInt64BE(BigInt(firstOffset), 0);
      const { records } = await decodeBatch(new Decoder(encoded));
      expect(records).toHaveLength(messages.length);
      records.forEach((r, i) => {
        const m = messages[i]!;
        expect(r.offset).toBe((BigInt(firstOffset) + BigInt(i)).toString());
        expect(r.timestamp).toBe(String(m.timestamp));
        expect(r.key === null ? null : r.key.toString()).toBe(m.key ?? null);
        expect(r.value === null ? null : r.value.toString()).toBe(
          m.value === null ? null : m.value.toString(),
        );
        const headers = Object.fromEntries(
          Object.entries(r.headers).map(([k, v]) => [k, Array.isArray(v) ? v.map(String) : String(v)]),
        );
        expect(headers).toEqual(m.headers);
      });
    }
  });
});

describe('kafkajs header values (patch)', () => {
  it('gives records whose header repeats the last value of its key that same Buffer, holding its own bytes', async () => {
    const big = 'b'.repeat(300);
    const values = ['v1', 'v1', 'v1', 'v2', 'v2', 'v1', big, big];
    const messages = values.map((v, i) => ({ key: `${i}`, value: 'x', headers: { 'tidemark.schema': v } }));
    const now = 1_763_000_000_000;
    const encoded = encodeUncompressedRecordBatch({
      messages,
      dateNow: now,
      firstTimestamp: now,
      maxTimestamp: now,
      firstSequence: 0,
    }).buffer;
    const { records } = await decodeBatch(new Decoder(encoded));
    const got = records.map((r) => r.headers['tidemark.schema'] as Buffer);
    expect(got.map(String)).toEqual(values);
    expect(got[1]).toBe(got[0]);
    expect(got[2]).toBe(got[0]);
    expect(got[4]).toBe(got[3]);
    expect(got[5]).not.toBe(got[0]);
    expect(got[5]!.equals(got[0]!)).toBe(true);
    // Values over 256 bytes are views of the fetched bytes, one per record, as kafkajs gives them.
    expect(got[7]).not.toBe(got[6]);
    // A kept value is a copy: the fetched bytes can be reused without changing it.
    encoded.fill(0);
    expect(String(got[0])).toBe('v1');
  });
});

describe('kafkajs fetched batch (patch)', () => {
  const Batch = require('kafkajs/src/consumer/batch') as new (
    topic: string,
    fetchedOffset: string,
    data: { partition: number; highWatermark: string; messages: object[]; abortedTransactions: [] },
  ) => { messages: { offset: string }[] };

  it('keeps the messages at or after the fetched offset, comparing offsets as numbers', () => {
    const offsets = ['8', '9', '10', '11', '99', '100', '101', '999', '1000', '12345678901234567890'];
    for (const fetched of ['0', '9', '10', '100', '1000', '12345678901234567889']) {
      const batch = new Batch('t', fetched, {
        partition: 0,
        highWatermark: '0',
        abortedTransactions: [],
        messages: offsets.map((offset) => ({ offset, key: null, isControlRecord: false, batchContext: {} })),
      });
      expect(batch.messages.map((m) => m.offset)).toEqual(
        offsets.filter((o) => BigInt(o) >= BigInt(fetched)),
      );
    }
  });
});

describe('record batch checksum (patch)', () => {
  const crc32C = require('kafkajs/src/protocol/recordBatch/crc32C/crc32C') as ((b: Buffer) => number) & {
    crc32CInJs: (b: Buffer) => number;
  };

  it('is the native CRC32-C, equal to the JavaScript one of kafkajs on any bytes', () => {
    expect(crc32C).not.toBe(crc32C.crc32CInJs);
    // The check value of CRC32-C (Castagnoli) for the ASCII digits 1 to 9.
    expect(crc32C(Buffer.from('123456789'))).toBe(0xe3069283);
    for (const size of [0, 1, 7, 8, 9, 63, 64, 65, 4096, 100_003]) {
      const bytes = randomBytes(size + 3).subarray(3);
      expect(crc32C(bytes)).toBe(crc32C.crc32CInJs(bytes));
    }
  });
});
