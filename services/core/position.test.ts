import { describe, expect, it } from 'vitest';
import {
  binlogSequence,
  comparePositions,
  describePosition,
  formatPosition,
  makePosition,
  parsePosition,
  type Position,
} from './position.js';
import { TidemarkError } from './errors.js';

function randomPosition(rand: () => number): Position {
  const pick = (max: number) => Math.floor(rand() * max);
  // Small ranges make ties on the leading fields common, so the tie-breaking fields are exercised.
  return makePosition(pick(4) + 1, pick(5) * 1000 + pick(3), pick(3) === 0 ? pick(2_000_000) : pick(4));
}

function seeded(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

describe('Position', () => {
  it('orders by binlog file, then end offset, then row', () => {
    const a = makePosition(1, 9_000, 5);
    const b = makePosition(2, 4, 0);
    const c = makePosition(2, 120, 0);
    const d = makePosition(2, 120, 1);
    expect([d, b, a, c].sort(comparePositions)).toEqual([a, b, c, d]);
  });

  it('has a string form whose plain string order is the position order', () => {
    const rand = seeded(42);
    const positions = Array.from({ length: 2000 }, () => randomPosition(rand));
    const byPosition = [...positions].sort(comparePositions).map(formatPosition);
    const byString = positions.map(formatPosition).sort();
    expect(byString).toEqual(byPosition);
  });

  it('round-trips through its string form', () => {
    const p = makePosition(42, 1234, 3);
    expect(formatPosition(p)).toBe('0000000042-00000000001234-000000000003');
    expect(parsePosition(formatPosition(p))).toEqual(p);
  });

  it('reads the form a person writes: binlog file, offset and optional row', () => {
    expect(parsePosition('mariadb-bin.000042:1234')).toEqual(makePosition(42, 1234, 0));
    expect(parsePosition(' mysql-bin.1000001:4#7 ')).toEqual(makePosition(1_000_001, 4, 7));
    expect(describePosition(makePosition(42, 1234, 3), 'mariadb-bin')).toBe('mariadb-bin.000042:1234#3');
    expect(describePosition(makePosition(42, 1234, 0))).toBe('42:1234');
  });

  it('keeps the GTID as information, not as part of the order', () => {
    const a = makePosition(3, 100, 0, '0-1-77');
    const b = makePosition(3, 100, 0);
    expect(comparePositions(a, b)).toBe(0);
    expect(a.gtid).toBe('0-1-77');
  });

  it('rejects text that is not a position, saying how to write one', () => {
    expect(() => parsePosition('yesterday')).toThrow(TidemarkError);
    expect(() => parsePosition('yesterday')).toThrow(/is not a position/);
    expect(() => binlogSequence('mariadb-bin')).toThrow(/not a binlog file name/);
  });

  it('rejects parts that are negative, fractional or too wide for the string form', () => {
    expect(() => makePosition(-1, 0, 0)).toThrow(/file/);
    expect(() => makePosition(1, 1.5, 0)).toThrow(/offset/);
    expect(() => makePosition(1, 0, 10 ** 12)).toThrow(/row/);
  });
});
