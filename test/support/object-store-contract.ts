// The behaviour every object store backend must have, as one test suite run against each of them.

import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../../services/core/errors.js';
import { sha256Hex, type ObjectStore } from '../../services/core/object-store/store.js';

async function collect(it: AsyncIterable<{ key: string }>): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of it) keys.push(o.key);
  return keys;
}

export function objectStoreContract(
  name: string,
  open: () => ObjectStore,
  options: { largeBytes: number },
): void {
  describe(`object store: ${name}`, () => {
    it('stores and returns bytes exactly, with their SHA-256', async () => {
      const store = open();
      const body = randomBytes(1000);
      const info = await store.put('changes/chat.messages/dt=2024-03-01/hour=10/0-0-9.avro', body);
      expect(info).toEqual({
        key: 'changes/chat.messages/dt=2024-03-01/hour=10/0-0-9.avro',
        size: 1000,
        sha256: sha256Hex(body),
      });
      expect((await store.get(info.key, { sha256: info.sha256 })).equals(body)).toBe(true);
      expect(await store.head(info.key)).toMatchObject({ key: info.key, size: 1000 });
    });

    it('writes a large object in parts and reads it back whole', async () => {
      const store = open();
      const body = randomBytes(options.largeBytes);
      const info = await store.put('big/object.bin', body);
      expect((await store.get('big/object.bin', { sha256: info.sha256 })).equals(body)).toBe(true);
    });

    it('lists by prefix in key order, and after a given key', async () => {
      const store = open();
      for (const key of ['l/dt=2024-03-02/b', 'l/dt=2024-03-01/a', 'l/dt=2024-03-01/c', 'other/x'])
        await store.put(key, Buffer.from(key));
      expect(await collect(store.list('l/'))).toEqual([
        'l/dt=2024-03-01/a',
        'l/dt=2024-03-01/c',
        'l/dt=2024-03-02/b',
      ]);
      expect(await collect(store.list('l/dt=2024-03-01/'))).toEqual([
        'l/dt=2024-03-01/a',
        'l/dt=2024-03-01/c',
      ]);
      expect(await collect(store.list('l/', { startAfter: 'l/dt=2024-03-01/a' }))).toEqual([
        'l/dt=2024-03-01/c',
        'l/dt=2024-03-02/b',
      ]);
    });

    it('deletes, and names a missing object when asked for it', async () => {
      const store = open();
      await store.put('gone/x', Buffer.from('x'));
      await store.delete(['gone/x', 'gone/never-existed']);
      expect(await store.head('gone/x')).toBeUndefined();
      const err = await store.get('gone/x').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TidemarkError);
      expect((err as TidemarkError).code).toBe('OBJECT_NOT_FOUND');
      expect((err as TidemarkError).message).toContain(`${store.url}/gone/x`);
    });

    it('never returns an object whose SHA-256 does not match, naming it', async () => {
      const store = open();
      await store.put('corrupt/x', Buffer.from('original'));
      const err = await store
        .get('corrupt/x', { sha256: sha256Hex(Buffer.from('something else')) })
        .catch((e: unknown) => e);
      expect((err as TidemarkError).code).toBe('OBJECT_CORRUPT');
      expect((err as TidemarkError).message).toContain(`${store.url}/corrupt/x`);
      await expect(
        store.put('corrupt/y', Buffer.from('a'), { sha256: sha256Hex(Buffer.from('b')) }),
      ).rejects.toThrow(/refusing to write/);
    });

    it('refuses keys that could leave the store', async () => {
      const store = open();
      for (const key of ['../escape', '/absolute', 'a//b', 'a/./b', '']) {
        await expect(store.put(key, Buffer.from('x'))).rejects.toThrow(/not a valid object key/);
      }
    });
  });
}
