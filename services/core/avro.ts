// Avro types as tidemark uses them: every `long` is a JS bigint (BIGINT values beyond 2^53 stay exact)
// and `decimal` is an exact decimal string ("-999.99"), never a float.

import avro from 'avsc';
import { TidemarkError } from './errors.js';

export type AvroSchema = avro.Schema;
export type AvroType = avro.Type;

/** Parses a decimal text into its unscaled integer at `scale`, e.g. ("-1.5", 2) → -150n. */
export function decimalToUnscaled(text: string, scale: number): bigint {
  const match = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(text.trim());
  if (!match || (match[2] === '' && (match[3] ?? '') === '')) {
    throw new TidemarkError('INTERNAL', `"${text}" is not a decimal number`);
  }
  const [, sign, whole = '', fraction = ''] = match;
  if (fraction.length > scale && /[1-9]/.test(fraction.slice(scale))) {
    throw new TidemarkError('INTERNAL', `decimal ${text} has more than ${scale} fraction digits`);
  }
  const digits = `${whole}${fraction.slice(0, scale).padEnd(scale, '0')}`;
  const magnitude = BigInt(digits === '' ? '0' : digits);
  return sign === '-' ? -magnitude : magnitude;
}

/** The decimal text of an unscaled integer, with exactly `scale` fraction digits (MySQL's own form). */
export function unscaledToDecimal(unscaled: bigint, scale: number): string {
  const negative = unscaled < 0n;
  const digits = (negative ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  const text = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return negative ? `-${text}` : text;
}

/** Two's-complement big-endian bytes, as few as hold the value (Avro's decimal encoding). */
export function bigintToBytes(value: bigint): Buffer {
  let hex = (value < 0n ? (1n << BigInt(byteLengthFor(value) * 8)) + value : value).toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  const bytes = Buffer.from(hex, 'hex');
  const needed = byteLengthFor(value);
  return bytes.length >= needed ? bytes : Buffer.concat([Buffer.alloc(needed - bytes.length), bytes]);
}

function byteLengthFor(value: bigint): number {
  let n = 1;
  while (value < -(1n << BigInt(n * 8 - 1)) || value >= 1n << BigInt(n * 8 - 1)) n++;
  return n;
}

export function bytesToBigint(bytes: Buffer): bigint {
  if (bytes.length === 0) return 0n;
  const unsigned = BigInt(`0x${bytes.toString('hex')}`);
  const negative = (bytes[0] ?? 0) & 0x80;
  return negative ? unsigned - (1n << BigInt(bytes.length * 8)) : unsigned;
}

interface DecimalSchema {
  precision: number;
  scale?: number;
}

/** Avro `decimal` over `bytes`, held in memory as an exact decimal string. */
class DecimalType extends avro.types.LogicalType {
  private readonly precision: number;
  private readonly scale: number;

  constructor(schema: avro.Schema, opts?: unknown) {
    super(schema, opts);
    const { precision, scale = 0 } = schema as unknown as DecimalSchema;
    this.precision = precision;
    this.scale = scale;
  }

  protected override _fromValue(buf: Buffer): string {
    return unscaledToDecimal(bytesToBigint(buf), this.scale);
  }

  protected override _toValue(value: unknown): Buffer {
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'bigint') {
      throw new TidemarkError(
        'INTERNAL',
        `a decimal(${this.precision},${this.scale}) value must be text, got ${typeof value}`,
      );
    }
    return bigintToBytes(decimalToUnscaled(String(value), this.scale));
  }

  protected override _resolve(type: avro.Type): unknown {
    if (avro.Type.isType(type, 'logical:decimal')) {
      const other = type as unknown as DecimalType;
      if (other.scale === this.scale) return (value: string) => value;
    }
    return undefined;
  }

  protected override _export(schema: avro.Schema): void {
    Object.assign(schema as object, { precision: this.precision, scale: this.scale });
  }
}

/**
 * `long` as bigint, so BIGINT values and positions beyond 2^53 stay exact. Numbers are accepted when
 * writing (positions, times). avsc packs the 8 bytes returned by toBuffer before the next call, so one
 * scratch buffer serves every write.
 */
const scratch = Buffer.alloc(8);
const bigintLong = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => buf.readBigInt64LE(),
  toBuffer: (n: bigint | number) => {
    scratch.writeBigInt64LE(typeof n === 'bigint' ? n : BigInt(n));
    return scratch;
  },
  fromJSON: (json: unknown) => BigInt(json as string | number),
  toJSON: (n: bigint) =>
    n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString(),
  isValid: (n: unknown) =>
    (typeof n === 'bigint' && n >= -(1n << 63n) && n < 1n << 63n) ||
    (typeof n === 'number' && Number.isSafeInteger(n)),
  compare: (a: bigint, b: bigint) => (a === b ? 0 : a < b ? -1 : 1),
});

/**
 * Decoding straight from the varint: no 8-byte buffer per value (a restore reads millions of longs). Up to
 * seven bytes (|n| < 2^48) are summed exactly as a number; longer ones continue as bigint.
 */
interface Tap {
  buf: Buffer;
  pos: number;
}
const fastLong = Object.create(bigintLong) as avro.Type & { _read: (tap: Tap) => bigint };
fastLong._read = (tap: Tap): bigint => {
  const buf = tap.buf;
  let pos = tap.pos;
  let sum = 0;
  let mul = 1;
  let b = 0;
  let n = 0;
  do {
    b = buf[pos++] ?? 0;
    sum += (b & 0x7f) * mul;
    mul *= 128;
    n++;
  } while (b & 0x80 && n < 7);
  let value: bigint;
  if (b & 0x80) {
    let big = BigInt(sum);
    let shift = 49n;
    do {
      b = buf[pos++] ?? 0;
      big |= BigInt(b & 0x7f) << shift;
      shift += 7n;
    } while (b & 0x80);
    value = (big >> 1n) ^ -(big & 1n);
  } else {
    value = BigInt(sum % 2 === 0 ? sum / 2 : -(sum + 1) / 2);
  }
  tap.pos = pos;
  return value;
};

/**
 * Writing without an 8-byte buffer per value too: a long within ±2^52 (every position, time and most ids)
 * is zigzag-varint written straight from the number by avsc's tap (exact while twice the value fits a
 * double's 53 bits); anything larger takes avsc's 64-bit path.
 */
const DIRECT = 2 ** 52;
const DIRECT_BIG = BigInt(DIRECT);
type WritingTap = Tap & { writeLong(n: number): void };
const writable = fastLong as unknown as { _write: (tap: WritingTap, value: unknown) => void };
const writeAnyLong = writable._write;
writable._write = function (this: unknown, tap: WritingTap, value: unknown): void {
  if (typeof value === 'number' && Number.isInteger(value) && value > -DIRECT && value < DIRECT) {
    tap.writeLong(value);
  } else if (typeof value === 'bigint' && value > -DIRECT_BIG && value < DIRECT_BIG) {
    tap.writeLong(Number(value));
  } else writeAnyLong.call(this, tap, value);
};

/** Options every tidemark Avro type is built with; readers use the same so decoded values match. */
export function typeOptions(): Partial<avro.ForSchemaOptions> {
  return {
    logicalTypes: { decimal: DecimalType },
    registry: { long: fastLong },
    wrapUnions: false,
  };
}

export function avroType(schema: AvroSchema): AvroType {
  return avro.Type.forSchema(schema, typeOptions());
}

export { avro };
