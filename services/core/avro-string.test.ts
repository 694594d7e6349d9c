// tidemark patches avsc (patches/avsc+5.7.9.patch) to write short ASCII strings without measuring them
// first. Every string must still encode to its length and UTF-8 bytes, in any buffer.

import { describe, expect, it } from 'vitest';
import { avro } from './avro.js';

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
    'x'.repeat(63),
    'x'.repeat(64),
    'x'.repeat(65),
    '你好',
    'ascii then é',
    '👋',
    `${'y'.repeat(62)}é`,
    `message number 7 in a busy classroom chat 你好 👋`,
    '𝄞'.repeat(40),
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
