// The fast write paths of tidemark's Avro types: short ASCII strings, and any string with room for its
// widest UTF-8 form, written without measuring them first (patches/avsc+5.7.9.patch), longs written from numbers without an 8-byte buffer (avro.ts). Both must
// give the bytes of the Avro specification, in any buffer.

import { describe, expect, it } from 'vitest';
import { avro, avroType } from './avro.js';

const stringType = avro.Type.forSchema('string');

function expected(s: string): Buffer {
  const bytes = Buffer.from(s, 'utf8');
  const lengthType = avro.Type.forSchema('long');
  return Buffer.concat([lengthType.toBuffer(bytes.length), bytes]);
}

describe('Avro string writing (patch)', () => {
  const strings = [
    '',
    'a',
    '["12345"]',
    '2024-03-01 10:03:11.123456',
    // Around the longest string written character by character (32), and the one-byte length (63).
    'x'.repeat(32),
    'x'.repeat(33),
    `${'x'.repeat(31)}é`,
    'x'.repeat(63),
    'x'.repeat(64),
    'x'.repeat(65),
    '你好',
    'ascii then é',
    '👋',
    `${'y'.repeat(62)}é`,
    `message number 7 in a busy classroom chat 你好 👋`,
    '𝄞'.repeat(40),
    // Around the one- and two-byte lengths of strings written without measuring them first.
    `${'é'.repeat(31)}a`,
    'é'.repeat(32),
    '你'.repeat(21),
    '你'.repeat(22),
    `#12 thanks! that explanation of the proof finally made it click for me, much appreciated 🙏`,
    '你'.repeat(2730),
    '你'.repeat(2731),
    'é'.repeat(4096),
  ];

  it('writes every string as its UTF-8 length and bytes, and reads it back', () => {
    for (const s of strings) {
      const buf = stringType.toBuffer(s);
      expect(buf.equals(expected(s))).toBe(true);
      expect(stringType.fromBuffer(buf)).toBe(s);
    }
  });

  it('writes in place at any offset, and reports what a short buffer lacks', () => {
    for (const s of strings) {
      const want = expected(s);
      const buf = Buffer.alloc(want.length + 3, 0xaa);
      expect(stringType.encode(s, buf, 3)).toBe(want.length + 3);
      expect(buf.subarray(3).equals(want)).toBe(true);
      for (let room = 0; room < want.length; room++) {
        expect(stringType.encode(s, Buffer.alloc(room), 0)).toBe(room - want.length);
      }
    }
  });
});

describe('Avro long writing', () => {
  const longType = avroType('long');

  function zigzagVarint(n: bigint): Buffer {
    let z = n >= 0n ? n << 1n : ((-n - 1n) << 1n) | 1n;
    const bytes: number[] = [];
    do {
      const low = Number(z & 0x7fn);
      z >>= 7n;
      bytes.push(z > 0n ? low | 0x80 : low);
    } while (z > 0n);
    return Buffer.from(bytes);
  }

  it('writes numbers and bigints of the whole 64-bit range as their zigzag varint, and reads them back', () => {
    const values = [
      0n,
      1n,
      -1n,
      63n,
      -64n,
      64n,
      (1n << 30n) - 1n,
      -(1n << 30n),
      1n << 31n,
      (1n << 52n) - 1n,
      -(1n << 52n) + 1n,
      1n << 52n,
      -(1n << 52n),
      BigInt(Number.MAX_SAFE_INTEGER),
      BigInt(Number.MIN_SAFE_INTEGER),
      BigInt(Number.MAX_SAFE_INTEGER) + 1n,
      BigInt(Number.MIN_SAFE_INTEGER) - 1n,
      (1n << 63n) - 1n,
      -(1n << 63n),
      1_763_000_000_123n,
    ];
    for (const v of values) {
      const want = zigzagVarint(v);
      expect(longType.toBuffer(v).equals(want)).toBe(true);
      expect(longType.fromBuffer(want)).toBe(v);
      if (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) {
        expect(longType.toBuffer(Number(v)).equals(want)).toBe(true);
      }
    }
  });

  it('refuses what is not a 64-bit integer', () => {
    for (const bad of [1.5, Number.MAX_SAFE_INTEGER + 2, 1n << 63n, -(1n << 63n) - 1n, '7', null]) {
      expect(() => longType.toBuffer(bad)).toThrow();
    }
  });

  it('reports what a short buffer lacks', () => {
    const want = zigzagVarint(1_763_000_000_123n);
    expect(longType.encode(1_763_000_000_123, Buffer.alloc(2), 0)).toBe(2 - want.length);
  });
});

describe('nullable union writing (patch)', () => {
  // Each branch type beside null, in both orders; a union is its branch index (a long) then the value.
  const branches: { schema: unknown; values: unknown[]; bad: unknown[] }[] = [
    { schema: 'string', values: ['', 'x', '你好 👋'], bad: [5, 5n, Buffer.from('x')] },
    { schema: 'long', values: [0, -1, 1n << 62n, Number.MAX_SAFE_INTEGER], bad: ['7', 1.5, 1n << 63n] },
    { schema: 'int', values: [0, -5, 2 ** 31 - 1], bad: ['7', Buffer.alloc(1)] },
    { schema: 'bytes', values: [Buffer.alloc(0), Buffer.from([1, 2, 3])], bad: ['x', 3] },
    {
      schema: { type: 'bytes', logicalType: 'decimal', precision: 10, scale: 2 },
      values: ['0.00', '-12345678.90', '1.50'],
      bad: [Buffer.from('x'), true],
    },
  ];

  it('writes null or the other branch with its index, and refuses a value of neither', () => {
    for (const { schema, values, bad } of branches) {
      const branch = avroType(schema as never);
      for (const nullFirst of [true, false]) {
        const union = avroType((nullFirst ? ['null', schema] : [schema, 'null']) as never);
        const nullIndex = nullFirst ? 0 : 1;
        const index = (i: number) => avroType('long').toBuffer(i);
        expect(union.toBuffer(null).equals(index(nullIndex))).toBe(true);
        for (const v of values) {
          const want = Buffer.concat([index(1 - nullIndex), branch.toBuffer(v)]);
          expect(union.toBuffer(v).equals(want)).toBe(true);
          expect(union.fromBuffer(want)).toEqual(branch.fromBuffer(branch.toBuffer(v)));
        }
        for (const v of [...bad, undefined]) expect(() => union.toBuffer(v)).toThrow();
      }
    }
  });
});
