import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeKey, makePosition, type Row } from '../core/index.js';
import { KeyedState, type Slot } from './keyed-state.js';

function slot(offset: number, row: Row | null, index = 0): Slot {
  return {
    pos: makePosition(7, offset, index),
    tsMs: 1_772_000_000_000 + offset,
    op: row === null ? 'd' : 'u',
    tx: `tx-${offset}`,
    row,
    version: 'v1',
  };
}

function seeded(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

function shuffle<T>(items: T[], rand: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** Every key's history: a few versions each, some ending in a delete, with values a spill must keep exact. */
function history(keys: number): [string, Slot][] {
  const changes: [string, Slot][] = [];
  for (let k = 0; k < keys; k++) {
    const key = encodeKey([k]);
    const versions = 1 + (k % 4);
    for (let v = 0; v < versions; v++) {
      const offset = 1000 + v * 100_000 + k;
      const deleted = k % 7 === 0 && v === versions - 1;
      changes.push([
        key,
        slot(
          offset,
          deleted
            ? null
            : {
                id: k,
                big: 2n ** 60n + BigInt(k),
                name: `user ${k} v${v}`,
                hash: Buffer.from([k & 0xff, v]),
                note: null,
              },
        ),
      ]);
    }
  }
  return changes;
}

describe('KeyedState', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'keyed-state-test-'));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the change with the highest position per key, whatever order they arrive in', () => {
    const state = new KeyedState({ maxKeys: 1000, tmpDir: dir });
    state.offer('["a"]', slot(300, { v: 3 }));
    state.offer('["a"]', slot(100, { v: 1 }));
    state.offer('["a"]', slot(300, { v: 3 }));
    state.offer('["a"]', slot(200, { v: 2 }));
    state.offer('["b"]', slot(50, { v: 'b0' }, 1));
    state.offer('["b"]', slot(50, { v: 'b1' }, 2));
    state.offer('["b"]', slot(50, { v: 'b0' }, 1));
    expect([...state.rows()].map(([k, s]) => [k, s.row])).toEqual([
      ['["a"]', { v: 3 }],
      ['["b"]', { v: 'b1' }],
    ]);
  });

  it('hides a key whose latest change is a delete, and shows it when a later change re-creates it', () => {
    const state = new KeyedState({ maxKeys: 1000, tmpDir: dir });
    state.offer('[1]', slot(200, null));
    state.offer('[1]', slot(100, { id: 1 }));
    state.offer('[2]', slot(100, null));
    state.offer('[2]', slot(300, { id: 2 }));
    state.offer('[3]', slot(100, { id: 3 }));
    expect([...state.rows()].map(([k]) => k)).toEqual(['[2]', '[3]']);
  });

  it('yields keys in the order they were first seen', () => {
    const state = new KeyedState({ maxKeys: 1000, tmpDir: dir });
    for (const key of ['["m"]', '["b"]', '["z"]', '["a"]', '["k"]']) state.offer(key, slot(10, { key }));
    state.offer('["m"]', slot(20, { key: 'm again' }));
    expect([...state.rows()].map(([k]) => k)).toEqual(['["m"]', '["b"]', '["z"]', '["a"]', '["k"]']);
    expect(state.spilled).toBe(false);
  });

  it('spills past maxKeys and still gives exactly the rows it gives in memory', () => {
    const changes = history(3000);
    const arrivals = shuffle([...changes, ...changes.filter((_, i) => i % 3 === 0)], seeded(7));

    const inMemory = new KeyedState({ maxKeys: 1_000_000, tmpDir: dir });
    const spilling = new KeyedState({ maxKeys: 50, tmpDir: dir });
    for (const [key, s] of arrivals) {
      inMemory.offer(key, s);
      spilling.offer(key, s);
    }
    expect(inMemory.spilled).toBe(false);
    expect(spilling.spilled).toBe(true);
    expect(readdirSync(dir)).toHaveLength(1);

    const byKey = (a: [string, Slot], b: [string, Slot]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
    const expected = [...inMemory.rows()].sort(byKey);
    const got = [...spilling.rows()];
    // Each key once; spilled, in first-seen order within each hash bucket.
    expect(new Set(got.map(([k]) => k)).size).toBe(got.length);
    expect([...got].sort(byKey)).toEqual(expected);
    expect(expected).toHaveLength(3000 - Math.ceil(3000 / 7));

    // The newest version of every key, with bigints and byte strings exactly as offered.
    const [key, newest] = got.find(([k]) => k === '[3]') as [string, Slot];
    expect(key).toBe('[3]');
    expect(newest.row).toEqual({
      id: 3,
      big: 2n ** 60n + 3n,
      name: 'user 3 v3',
      hash: Buffer.from([3, 3]),
      note: null,
    });
    expect(Buffer.isBuffer(newest.row?.hash)).toBe(true);

    expect(spilling.spilled).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('removes its spill files when the reader stops early, and on discard', () => {
    const early = new KeyedState({ maxKeys: 10, tmpDir: dir });
    for (let k = 0; k < 100; k++) early.offer(encodeKey([k]), slot(k, { k }));
    expect(early.spilled).toBe(true);
    for (const [, s] of early.rows()) {
      expect(s.row).not.toBeNull();
      break;
    }
    expect(readdirSync(dir)).toEqual([]);

    const failed = new KeyedState({ maxKeys: 10, tmpDir: dir });
    for (let k = 0; k < 100; k++) failed.offer(encodeKey([k]), slot(k, { k }));
    expect(readdirSync(dir)).toHaveLength(1);
    failed.discard();
    expect(readdirSync(dir)).toEqual([]);
    expect([...failed.rows()]).toEqual([]);
  });
});
