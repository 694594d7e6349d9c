import { describe, expect, it } from 'vitest';
import { encodeKey, makePosition, TableCodec, type ChangeEvent, type Op, type Row } from '../core/index.js';
import { KeyedState } from './keyed-state.js';
import { applyChange } from './rebuild.js';

const codec = new TableCodec({
  db: 'chat',
  table: 'users',
  columns: [
    { name: 'id', type: 'int' },
    { name: 'name', type: 'varchar' },
  ],
  primaryKey: ['id'],
});

function change(op: Op, before: Row | null, after: Row | null, offset: number, row = 0): ChangeEvent {
  const keyRow = (after ?? before) as Row;
  return {
    op,
    before,
    after,
    key: encodeKey([keyRow.id ?? null]),
    tsMs: 1_772_000_000_000 + offset,
    pos: makePosition(3, offset, row),
    tx: `0-1-${offset}`,
    source: { serverId: 1, db: 'chat', table: 'users', schemaVersion: codec.version },
  };
}

/** The table after folding the changes in the order given. */
function fold(changes: ChangeEvent[]): [string, Row | null][] {
  const state = new KeyedState({ maxKeys: 1000 });
  for (const e of changes) applyChange(state, codec, e);
  const rows: [string, Row | null][] = [...state.rows()].map(([key, slot]) => [key, slot.row]);
  return rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

describe('applyChange', () => {
  it('removes the old key when an update changes the primary key', () => {
    const changes = [
      change('c', null, { id: 1, name: 'Ada' }, 100),
      change('c', null, { id: 5, name: 'Bob' }, 150),
      change('u', { id: 1, name: 'Ada' }, { id: 2, name: 'Ada' }, 200),
    ];
    const expected = [
      ['2', { id: 2, name: 'Ada' }],
      ['5', { id: 5, name: 'Bob' }],
    ];
    expect(fold(changes)).toEqual(expected);
    expect(fold([...changes].reverse())).toEqual(expected);
  });

  it('keeps the key when an update leaves the primary key as it was', () => {
    expect(
      fold([
        change('c', null, { id: 1, name: 'Ada' }, 100),
        change('u', { id: 1, name: 'Ada' }, { id: 1, name: 'Ada Lovelace' }, 200),
      ]),
    ).toEqual([['1', { id: 1, name: 'Ada Lovelace' }]]);
  });

  it('keeps a key that is created again after an update moved it away', () => {
    const changes = [
      change('c', null, { id: 1, name: 'Ada' }, 100),
      change('u', { id: 1, name: 'Ada' }, { id: 2, name: 'Ada' }, 200),
      change('c', null, { id: 1, name: 'Eve' }, 300),
    ];
    const expected = [
      ['1', { id: 1, name: 'Eve' }],
      ['2', { id: 2, name: 'Ada' }],
    ];
    expect(fold(changes)).toEqual(expected);
    expect(fold([changes[2], changes[1], changes[0]] as ChangeEvent[])).toEqual(expected);
  });

  it('shifts keys in one statement (UPDATE users SET id = id + 1 ORDER BY id DESC) to the right rows', () => {
    const changes = [
      change('c', null, { id: 1, name: 'Ada' }, 100),
      change('c', null, { id: 2, name: 'Bob' }, 150),
      change('u', { id: 2, name: 'Bob' }, { id: 3, name: 'Bob' }, 200, 0),
      change('u', { id: 1, name: 'Ada' }, { id: 2, name: 'Ada' }, 200, 1),
    ];
    const expected = [
      ['2', { id: 2, name: 'Ada' }],
      ['3', { id: 3, name: 'Bob' }],
    ];
    expect(fold(changes)).toEqual(expected);
    expect(fold([...changes].reverse())).toEqual(expected);
  });

  it('removes the key of a delete', () => {
    expect(
      fold([change('c', null, { id: 1, name: 'Ada' }, 100), change('d', { id: 1, name: 'Ada' }, null, 200)]),
    ).toEqual([]);
  });

  it('keeps a key the same when a new schema version changes the key column type (INT to BIGINT)', () => {
    const wide = new TableCodec({
      db: 'chat',
      table: 'users',
      columns: [
        { name: 'id', type: 'bigint' },
        { name: 'name', type: 'varchar' },
      ],
      primaryKey: ['id'],
    });
    const state = new KeyedState({ maxKeys: 1000 });
    applyChange(state, codec, change('c', null, { id: 5, name: 'Ada' }, 100));
    applyChange(state, codec, change('c', null, { id: 6, name: 'Bob' }, 110));
    const del: ChangeEvent = { ...change('d', { id: 5n, name: 'Ada' }, null, 200), key: encodeKey([5n]) };
    const upd: ChangeEvent = {
      ...change('u', { id: 6n, name: 'Bob' }, { id: 6n, name: 'Bobby' }, 210),
      key: encodeKey([6n]),
    };
    applyChange(state, wide, del);
    applyChange(state, wide, upd);
    expect([...state.rows()].map(([k, slot]) => [k, slot.row])).toEqual([['6', { id: 6n, name: 'Bobby' }]]);
  });
});
