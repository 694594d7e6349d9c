// What "restore to" means: a time, a binlog position, a relative time, or the latest change there is.

import { parsePosition, positionThrough, TidemarkError, type Position } from '../core/index.js';

export type TargetPoint =
  | { kind: 'latest' }
  | { kind: 'time'; ms: number; text: string }
  | { kind: 'position'; pos: Position; text: string };

const UNITS: Record<string, number> = {
  s: 1_000,
  sec: 1_000,
  second: 1_000,
  m: 60_000,
  min: 60_000,
  minute: 60_000,
  h: 3_600_000,
  hour: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  w: 604_800_000,
  week: 604_800_000,
};

/**
 * Reads `--at`: an ISO-8601 time (without a zone it is UTC), `<binlog file>:<offset>[#row]`, the sortable
 * position form, `<n> <unit> ago`, `now` or `latest`. A binlog position without `#row` means the state after
 * every event ending at that offset, as `SHOW MASTER STATUS` or a consistent snapshot reports it.
 */
export function parseTargetPoint(text: string, nowMs = Date.now()): TargetPoint {
  const t = text.trim();
  if (t === '' || t === 'latest') return { kind: 'latest' };
  if (t === 'now') return { kind: 'time', ms: nowMs, text: new Date(nowMs).toISOString() };
  const ago = /^(\d+(?:\.\d+)?)\s*([a-z]+)\s+ago$/i.exec(t);
  if (ago) {
    // A plural `s` only after a word, so that "ms" is not read as minutes.
    const word = (ago[2] ?? '').toLowerCase();
    const unit =
      UNITS[word] ?? (word.length > 2 && word.endsWith('s') ? UNITS[word.slice(0, -1)] : undefined);
    if (unit === undefined) {
      throw new TidemarkError('POSITION_INVALID', `"${t}": unknown unit "${ago[2]}"`, {
        hint: 'use seconds, minutes, hours, days or weeks, e.g. "15 minutes ago"',
      });
    }
    const ms = nowMs - Math.round(Number(ago[1]) * unit);
    return { kind: 'time', ms, text: new Date(ms).toISOString() };
  }
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/i.test(t)) {
    const zoned = /(Z|[+-]\d{2}:?\d{2})$/i.test(t) || t.length === 10 ? t : `${t}Z`;
    const ms = Date.parse(zoned.replace(' ', 'T'));
    if (Number.isFinite(ms) && isCalendarDate(t.slice(0, 10))) {
      return { kind: 'time', ms, text: new Date(ms).toISOString() };
    }
  }
  if (/^[^:#\s]+:\d+$/.test(t)) {
    const p = parsePosition(t);
    return { kind: 'position', pos: positionThrough(p.file, p.offset), text: t };
  }
  try {
    return { kind: 'position', pos: parsePosition(t), text: t };
  } catch {
    throw new TidemarkError('POSITION_INVALID', `--at "${t}" is neither a time nor a position`, {
      hint: 'give an ISO-8601 time (2026-03-01T10:03:12Z), "15 minutes ago", a binlog position (mariadb-bin.000042:1234) or "latest"',
    });
  }
}

/** Date.parse rolls 2026-02-30 over into March; a day the month does not have is a typo, not a time. */
function isCalendarDate(ymd: string): boolean {
  const [y = 0, m = 0, d = 0] = ymd.split('-').map(Number);
  const day = new Date(Date.UTC(y, m - 1, d));
  return day.getUTCMonth() === m - 1 && day.getUTCDate() === d;
}
