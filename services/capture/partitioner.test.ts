import { randomBytes } from 'node:crypto';
import { Partitioners, type PartitionMetadata } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { KeyHashPartitioner, murmur2 } from './partitioner.js';

const metadata = (n: number): PartitionMetadata[] =>
  Array.from({ length: n }, (_, partitionId) => ({
    partitionId,
    leader: 1,
    partitionErrorCode: 0,
    replicas: [1],
    isr: [1],
  }));

describe('KeyHashPartitioner', () => {
  it('puts every key in the partition kafkajs and the Java client choose', () => {
    const ours = KeyHashPartitioner();
    const theirs = Partitioners.DefaultPartitioner();
    const keys: (string | Buffer)[] = ['', 'a', 'ab', 'abc', 'abcd', '[1]', '["42","x"]', '你好👋'];
    for (let i = 0; i < 2000; i++) keys.push(randomBytes(i % 37));
    for (const partitions of [1, 2, 3, 7, 12, 64]) {
      const partitionMetadata = metadata(partitions);
      for (const key of keys) {
        const message = { key, value: null };
        expect(ours({ topic: 't', partitionMetadata, message })).toBe(
          theirs({ topic: 't', partitionMetadata, message }),
        );
      }
    }
  });

  it('matches the reference hash of Kafka (Utils.murmur2 test vectors)', () => {
    // Values from the Java client's UtilsTest.testMurmur2.
    expect(murmur2(Buffer.from('21'))).toBe(-973932308);
    expect(murmur2(Buffer.from('foobar'))).toBe(-790332482);
    expect(murmur2(Buffer.from('a-little-bit-long-string'))).toBe(-985981536);
    expect(murmur2(Buffer.from('a-little-bit-longer-string'))).toBe(-1486304829);
    expect(murmur2(Buffer.from('lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8'))).toBe(-58897971);
    expect(murmur2(Buffer.from('abc'))).toBe(479470107);
  });

  it('keeps an explicit partition and spreads keyless records over the partitions', () => {
    const partitioner = KeyHashPartitioner();
    const partitionMetadata = metadata(4);
    expect(
      partitioner({ topic: 't', partitionMetadata, message: { key: 'k', value: null, partition: 3 } }),
    ).toBe(3);
    const seen = new Set<number>();
    for (let i = 0; i < 8; i++)
      seen.add(partitioner({ topic: 't', partitionMetadata, message: { value: null } }));
    expect([...seen].sort()).toEqual([0, 1, 2, 3]);
  });
});
