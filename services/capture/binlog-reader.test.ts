// The binlog client's packet reader (patches/@vlasky+zongji+0.9.0.patch) reads 1- to 4-byte unsigned
// numbers straight from the buffer: the same values as Buffer#readUIntLE, and the same error past the end.

import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';

interface Parser {
  append(buffer: Buffer): void;
  parseUnsignedNumber(bytes: number): number;
}

// The package exports only its entry point; the reader is loaded from its file.
const { Parser } = (await import(
  new URL('../../node_modules/@vlasky/zongji/lib/reader.js', import.meta.url).href
)) as { Parser: new () => Parser };

describe('binlog packet reader (patch)', () => {
  it('reads unsigned numbers of every width as readUIntLE does, at every offset', () => {
    const bytes = Buffer.concat([randomBytes(64), Buffer.alloc(8, 0xff), Buffer.alloc(8, 0)]);
    for (const width of [1, 2, 3, 4, 5, 6, 8]) {
      for (let offset = 0; offset + width <= bytes.length; offset++) {
        const parser = new Parser();
        parser.append(bytes);
        for (let i = 0; i < offset; i++) parser.parseUnsignedNumber(1);
        const expected =
          width === 8
            ? bytes.readUInt32LE(offset + 4) * 2 ** 32 + bytes.readUInt32LE(offset)
            : bytes.readUIntLE(offset, width);
        expect(parser.parseUnsignedNumber(width)).toBe(expected);
      }
    }
  });

  it('throws past the end of the buffer instead of reading undefined bytes', () => {
    for (const width of [1, 2, 3, 4]) {
      const parser = new Parser();
      parser.append(Buffer.alloc(width - 1, 1));
      expect(() => parser.parseUnsignedNumber(width)).toThrow(RangeError);
    }
  });
});
