// The binlog client's DATETIME text (patches/@vlasky+zongji+0.9.0.patch): built as one flat string, it must
// be the very text of the concatenation it replaces, for every width of every part and every precision.

import { describe, expect, it } from 'vitest';

interface Fraction {
  value: number;
  precision: number;
  milliseconds: number;
}
type GetDateTime = (
  dateStrings: boolean,
  year: number,
  month: number,
  date: number,
  hour: number,
  minute: number,
  second: number,
  fraction: Fraction | false | undefined,
  timezone: string,
) => string;

// The package exports only its entry point; the decoder is loaded from its file.
const { getDateTime } = (await import(
  new URL('../../node_modules/@vlasky/zongji/lib/datetime_decode.js', import.meta.url).href
)) as { getDateTime: GetDateTime };

const pad = (n: number, width: number) => {
  const s = String(n);
  return s.length >= width ? s.slice(s.length - width) : '0'.repeat(width - s.length) + s;
};

/** The text as the binlog client always wrote it: each part zero-padded to its width, then joined. */
function concatenated(y: number, mo: number, d: number, h: number, mi: number, s: number, f?: Fraction) {
  const fraction = f ? `.${pad(f.value, f.precision)}` : '';
  return `${pad(y, 4)}-${pad(mo, 2)}-${pad(d, 2)} ${pad(h, 2)}:${pad(mi, 2)}:${pad(s, 2)}${fraction}`;
}

describe('DATETIME text from the binlog (patch)', () => {
  it('is the zero-padded concatenation of its parts for every width and precision', () => {
    const differ: string[] = [];
    let checked = 0;
    for (const y of [0, 1, 9, 10, 99, 100, 999, 1000, 1970, 2026, 9999])
      for (const mo of [0, 1, 9, 10, 12])
        for (const d of [0, 1, 9, 10, 31])
          for (const h of [0, 9, 10, 23])
            for (const mi of [0, 7, 59])
              for (const s of [0, 5, 59])
                for (const precision of [0, 1, 2, 3, 4, 5, 6])
                  for (const v of [0, 1, 9, 10, 99, 12_345, 999_999]) {
                    const f =
                      precision === 0
                        ? undefined
                        : { value: v % 10 ** precision, precision, milliseconds: 0 };
                    const got = getDateTime(true, y, mo, d, h, mi, s, f ?? false, 'Z');
                    const want = concatenated(y, mo, d, h, mi, s, f);
                    if (got !== want) differ.push(`${got} instead of ${want}`);
                    checked++;
                  }
    expect(differ.slice(0, 10)).toEqual([]);
    expect(checked).toBe(11 * 5 * 5 * 4 * 3 * 3 * 7 * 7);
  });

  it('keeps the old text for parts beyond their widths', () => {
    expect(getDateTime(true, 12_345, 1, 2, 3, 4, 5, false, 'Z')).toBe(concatenated(12_345, 1, 2, 3, 4, 5));
    const wide = { value: 1_234_567, precision: 6, milliseconds: 0 };
    expect(getDateTime(true, 2026, 1, 2, 3, 4, 5, wide, 'Z')).toBe(concatenated(2026, 1, 2, 3, 4, 5, wide));
  });
});
