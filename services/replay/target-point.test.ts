import { describe, expect, it } from 'vitest';
import { formatPosition, makePosition, TidemarkError } from '../core/index.js';
import { parseTargetPoint, type TargetPoint } from './target-point.js';

const NOW = Date.parse('2026-03-01T12:00:00Z');

function timeOf(point: TargetPoint): number {
  if (point.kind !== 'time') throw new Error(`expected a time, got ${point.kind}`);
  return point.ms;
}

function positionOf(point: TargetPoint) {
  if (point.kind !== 'position') throw new Error(`expected a position, got ${point.kind}`);
  return point.pos;
}

function rejection(text: string): TidemarkError {
  try {
    parseTargetPoint(text, NOW);
  } catch (err) {
    expect(err).toBeInstanceOf(TidemarkError);
    return err as TidemarkError;
  }
  throw new Error(`"${text}" was accepted`);
}

describe('parseTargetPoint', () => {
  describe('times', () => {
    it('reads an ISO time with a zone as that instant', () => {
      expect(parseTargetPoint('2026-03-01T10:03:12Z', NOW)).toEqual({
        kind: 'time',
        ms: Date.parse('2026-03-01T10:03:12Z'),
        text: '2026-03-01T10:03:12.000Z',
      });
      expect(timeOf(parseTargetPoint('2026-03-01T10:03:12+01:00', NOW))).toBe(
        Date.parse('2026-03-01T09:03:12Z'),
      );
      expect(timeOf(parseTargetPoint('2026-03-01T10:03:12-0500', NOW))).toBe(
        Date.parse('2026-03-01T15:03:12Z'),
      );
      expect(timeOf(parseTargetPoint('2026-03-01T10:03:12.250Z', NOW))).toBe(
        Date.parse('2026-03-01T10:03:12.250Z'),
      );
    });

    it('reads an ISO time without a zone as UTC, whatever the local zone', () => {
      const utc = Date.parse('2026-03-01T10:03:12Z');
      expect(timeOf(parseTargetPoint('2026-03-01T10:03:12', NOW))).toBe(utc);
      expect(timeOf(parseTargetPoint('2026-03-01 10:03:12', NOW))).toBe(utc);
      expect(timeOf(parseTargetPoint('2026-03-01T10:03', NOW))).toBe(Date.parse('2026-03-01T10:03:00Z'));
    });

    it('reads a date alone as its midnight in UTC', () => {
      expect(parseTargetPoint('2026-03-01', NOW)).toEqual({
        kind: 'time',
        ms: Date.parse('2026-03-01T00:00:00Z'),
        text: '2026-03-01T00:00:00.000Z',
      });
    });

    it('refuses a day the month does not have instead of rolling it into the next month', () => {
      expect(rejection('2026-02-30').code).toBe('POSITION_INVALID');
      expect(rejection('2026-04-31T10:00:00Z').code).toBe('POSITION_INVALID');
      expect(rejection('2026-13-01').code).toBe('POSITION_INVALID');
      expect(timeOf(parseTargetPoint('2028-02-29', NOW))).toBe(Date.parse('2028-02-29T00:00:00Z'));
    });

    it('counts "<n> <unit> ago" back from now', () => {
      expect(parseTargetPoint('15 minutes ago', NOW)).toEqual({
        kind: 'time',
        ms: NOW - 15 * 60_000,
        text: '2026-03-01T11:45:00.000Z',
      });
      expect(timeOf(parseTargetPoint('2 hours ago', NOW))).toBe(NOW - 2 * 3_600_000);
      expect(timeOf(parseTargetPoint('1 day ago', NOW))).toBe(NOW - 86_400_000);
      expect(timeOf(parseTargetPoint('1 week ago', NOW))).toBe(NOW - 7 * 86_400_000);
      expect(timeOf(parseTargetPoint('30 seconds ago', NOW))).toBe(NOW - 30_000);
      expect(timeOf(parseTargetPoint('90s ago', NOW))).toBe(NOW - 90_000);
      expect(timeOf(parseTargetPoint('5 mins ago', NOW))).toBe(NOW - 5 * 60_000);
      expect(timeOf(parseTargetPoint('1.5 hours ago', NOW))).toBe(NOW - 5_400_000);
      expect(timeOf(parseTargetPoint('3 Days Ago', NOW))).toBe(NOW - 3 * 86_400_000);
    });

    it('refuses a unit it does not know rather than guessing one', () => {
      const fortnight = rejection('2 fortnights ago');
      expect(fortnight.code).toBe('POSITION_INVALID');
      expect(fortnight.message).toContain('fortnights');
      expect(fortnight.hint).toContain('15 minutes ago');
      // "ms" is not minutes: a person writing milliseconds must not restore hours back.
      expect(rejection('500 ms ago').code).toBe('POSITION_INVALID');
    });

    it('reads "now" as the time given as now', () => {
      expect(parseTargetPoint('now', NOW)).toEqual({
        kind: 'time',
        ms: NOW,
        text: '2026-03-01T12:00:00.000Z',
      });
    });
  });

  it('reads "latest" (and nothing at all) as the latest change there is', () => {
    expect(parseTargetPoint('latest', NOW)).toEqual({ kind: 'latest' });
    expect(parseTargetPoint('  latest ', NOW)).toEqual({ kind: 'latest' });
    expect(parseTargetPoint('', NOW)).toEqual({ kind: 'latest' });
  });

  describe('positions', () => {
    it('reads a binlog position without a row as after every event ending at that offset', () => {
      const point = parseTargetPoint('mariadb-bin.000042:1234', NOW);
      expect(point).toEqual({
        kind: 'position',
        pos: makePosition(42, 1234, 999_999_999_999),
        text: 'mariadb-bin.000042:1234',
      });
      const pos = positionOf(point);
      expect(formatPosition(pos) > formatPosition(makePosition(42, 1234, 5_000_000))).toBe(true);
      expect(formatPosition(pos) < formatPosition(makePosition(42, 1235, 0))).toBe(true);
    });

    it('reads a binlog position with #row as exactly that row', () => {
      expect(parseTargetPoint('mariadb-bin.000042:1234#3', NOW)).toEqual({
        kind: 'position',
        pos: makePosition(42, 1234, 3),
        text: 'mariadb-bin.000042:1234#3',
      });
      expect(positionOf(parseTargetPoint('mysql-bin.000007:4#0', NOW))).toEqual(makePosition(7, 4, 0));
    });

    it('reads the sortable form as exactly that position', () => {
      expect(parseTargetPoint('0000000042-00000000001234-000000000003', NOW)).toEqual({
        kind: 'position',
        pos: makePosition(42, 1234, 3),
        text: '0000000042-00000000001234-000000000003',
      });
    });
  });

  it('refuses anything else with POSITION_INVALID, saying which forms it accepts', () => {
    for (const text of [
      'yesterday',
      'tomorrow at noon',
      '2026/03/01',
      '42',
      'mariadb-bin.000042:abc',
      '15 minutes',
    ]) {
      const err = rejection(text);
      expect(err.code).toBe('POSITION_INVALID');
      expect(err.message).toContain(text);
      const said = err.describe();
      expect(said).toContain('ISO-8601');
      expect(said).toContain('15 minutes ago');
      expect(said).toContain('mariadb-bin.000042:1234');
      expect(said).toContain('latest');
    }
  });
});
