import { describe, expect, it } from 'vitest';
import type { ManifestEntry } from '../core/index.js';
import { gfsKeep, removableChanges } from './retention.js';

const DAY = 86_400_000;
const at = (iso: string) => Date.parse(iso);

/** One snapshot a day at 02:00 for `days` days up to 2026-11-21, plus a second one on the newest day. */
function daily(days: number) {
  const out: { id: string; tsMs: number }[] = [];
  for (let i = 0; i < days; i++) {
    const tsMs = at('2026-11-21T02:00:00Z') - i * DAY;
    out.push({ id: new Date(tsMs).toISOString().slice(0, 10), tsMs });
  }
  out.push({ id: 'newest', tsMs: at('2026-11-21T14:00:00Z') });
  return out;
}

describe('gfsKeep', () => {
  it('keeps the newest of each of the last N days, ISO weeks, months and years', () => {
    const kept = gfsKeep(daily(800), { last: 0, daily: 7, weekly: 4, monthly: 3, yearly: -1 });
    const keep = [...kept].filter(([, r]) => r.length > 0).map(([id]) => id);
    // Days: the newest (21st, 14:00) stands for the 21st; then the 20th … 15th.
    expect(kept.get('newest')).toEqual([
      'newest',
      'daily 2026-11-21',
      'weekly 2026-W47',
      'monthly 2026-11',
      'yearly 2026',
    ]);
    expect(kept.get('2026-11-21')).toEqual([]);
    for (const d of ['2026-11-20', '2026-11-19', '2026-11-15']) expect(kept.get(d)).toContain(`daily ${d}`);
    expect(kept.get('2026-11-14')).toEqual([]);
    // Weeks end on Sundays: W46 ends 2026-11-15, W45 on the 8th, W44 on the 1st.
    expect(kept.get('2026-11-15')).toContain('weekly 2026-W46');
    expect(kept.get('2026-11-08')).toEqual(['weekly 2026-W45']);
    expect(kept.get('2026-11-01')).toEqual(['weekly 2026-W44']);
    // Months: the last day of October and of September; years: the last day of 2025 and of 2024.
    expect(kept.get('2026-10-31')).toEqual(['monthly 2026-10']);
    expect(kept.get('2026-09-30')).toEqual(['monthly 2026-09']);
    expect(kept.get('2025-12-31')).toEqual(['yearly 2025']);
    expect(kept.get('2024-12-31')).toEqual(['yearly 2024']);
    // newest, six more days, two more weeks (W46 is the 15th, kept daily), two months, two years.
    expect(keep).toHaveLength(1 + 6 + 2 + 2 + 2);
  });

  it('keeps the last N whatever their dates', () => {
    const kept = gfsKeep(daily(5), { last: 3, daily: 0, weekly: 0, monthly: 0, yearly: 0 });
    expect([...kept].filter(([, r]) => r.length > 0).map(([id, r]) => `${id}: ${r.join(', ')}`)).toEqual([
      'newest: newest, last 1',
      '2026-11-21: last 2',
      '2026-11-20: last 3',
    ]);
  });

  it('keeps the newest snapshot even when every count is 0, and every one with -1', () => {
    const none = gfsKeep(daily(10), { last: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0 });
    expect([...none].filter(([, r]) => r.length > 0).map(([id]) => id)).toEqual(['newest']);
    const all = gfsKeep(daily(10), { last: 0, daily: -1, weekly: 0, monthly: 0, yearly: 0 });
    expect([...all].filter(([, r]) => r.length > 0)).toHaveLength(10);
  });
});

function entry(
  partition: number,
  first: number,
  last: number,
  firstPos: string,
  lastPos: string,
): ManifestEntry {
  return {
    table: 'chat.messages',
    object_key: `changes/chat.messages/dt=2026-11-21/hour=00/${partition}-${first}-${last}.avro`,
    partition,
    first_offset: BigInt(first),
    last_offset: BigInt(last),
    first_pos: firstPos,
    last_pos: lastPos,
  } as ManifestEntry;
}

describe('removableChanges', () => {
  it('removes, per partition, the files before the last one starting at or before the base', () => {
    const files = [
      entry(0, 0, 9, 'a0', 'a9'),
      entry(0, 10, 19, 'b0', 'b9'),
      entry(0, 20, 29, 'c0', 'c9'), // starts before the base at c5: stays, it holds changes after it
      entry(0, 30, 39, 'd0', 'd9'),
      entry(1, 0, 4, 'a5', 'c2'),
      entry(1, 5, 9, 'c3', 'c5'), // ends exactly at the base, but is the last to start before it: stays
      entry(1, 10, 14, 'c6', 'e0'),
    ];
    expect(removableChanges(files, 'c5').map((e) => `${e.partition}:${e.first_offset}`)).toEqual([
      '0:0',
      '0:10',
      '1:0',
    ]);
  });

  it('never removes across a gap, nor anything when no file starts before the base', () => {
    const gap = [entry(0, 0, 9, 'a0', 'a9'), entry(0, 15, 19, 'b0', 'b9'), entry(0, 20, 29, 'c0', 'c9')];
    expect(removableChanges(gap, 'c5').map((e) => Number(e.first_offset))).toEqual([15]);
    expect(removableChanges([entry(0, 0, 9, 'd0', 'd9')], 'c5')).toEqual([]);
  });
});
