import { describe, expect, it } from 'vitest';
import { changeFileKey, manifestDayPrefixes, manifestKey } from './archive-layout.js';
import { avroType } from './avro.js';
import { loadSchemaFile } from './package-root.js';

const file = {
  db: 'chat',
  table: 'messages',
  tsMs: Date.UTC(2024, 2, 1, 10, 3, 11),
  partition: 2,
  firstOffset: 1000,
  lastOffset: 1999,
};

describe('archive layout', () => {
  it('puts a data file under a deterministic, Hive-style key', () => {
    expect(changeFileKey('tm', file)).toBe(
      'tm/changes/chat.messages/dt=2024-03-01/hour=10/2-00000000000000001000-00000000000000001999.avro',
    );
    expect(changeFileKey('', file)).toBe(
      'changes/chat.messages/dt=2024-03-01/hour=10/2-00000000000000001000-00000000000000001999.avro',
    );
  });

  it('orders files of a partition by offset in plain key order', () => {
    const keys = [9, 10, 100, 99].map((first) =>
      changeFileKey('tm', { ...file, firstOffset: first, lastOffset: first }),
    );
    expect([...keys].sort()).toEqual(
      [9, 10, 99, 100].map((first) =>
        changeFileKey('tm', { ...file, firstOffset: first, lastOffset: first }),
      ),
    );
  });

  it('keeps the manifest entry beside the day of its data file', () => {
    expect(manifestKey('tm', file)).toBe(
      'tm/manifests/chat.messages/dt=2024-03-01/2-00000000000000001000-00000000000000001999.avro',
    );
  });

  it('lists one manifest prefix per day asked for, whatever the archive holds', () => {
    const from = Date.UTC(2024, 1, 28, 23, 0);
    const to = Date.UTC(2024, 2, 1, 1, 0);
    expect(manifestDayPrefixes('tm', 'chat', 'messages', from, to)).toEqual([
      'tm/manifests/chat.messages/dt=2024-02-28/',
      'tm/manifests/chat.messages/dt=2024-02-29/',
      'tm/manifests/chat.messages/dt=2024-03-01/',
    ]);
  });

  it('has a manifest entry schema that encodes the fields readers prune by', () => {
    const type = avroType(loadSchemaFile('manifest-entry') as never);
    const entry = {
      table: 'chat.messages',
      object_key: changeFileKey('tm', file),
      partition: 2,
      first_offset: 1000n,
      last_offset: 1999n,
      first_pos: '0000000003-00000000000004-000000000000',
      last_pos: '0000000003-00000000009999-000000000000',
      min_ts_ms: 1n,
      max_ts_ms: 2n,
      rows: 1000n,
      bytes: 123n,
      sha256: 'ab'.repeat(32),
      schema_fingerprint: '0123456789abcdef',
      codec: 'deflate',
      key_id: null,
      column_stats: { room_id: { min: '7', max: '42' } },
      written_ms: 3n,
      positions_ascending: true,
    };
    expect(type.fromBuffer(type.toBuffer(entry))).toEqual(entry);
  });
});
