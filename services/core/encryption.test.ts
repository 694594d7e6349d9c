import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { errorOf } from '../../test/support/error-of.js';
import { decrypt, encrypt, isEncrypted, keyIdOf, parseMasterKey, type Keyring } from './encryption.js';

const k2025 = parseMasterKey('k2025', randomBytes(32).toString('hex'), 'archive.keys.k2025');
const k2026 = parseMasterKey('k2026', randomBytes(32).toString('base64'), 'archive.keys.k2026');

describe('encryption at rest', () => {
  it('round-trips bytes, with a fresh data key per object', () => {
    const keyring: Keyring = { current: k2026, all: [k2026] };
    const plain = randomBytes(10_000);
    const a = encrypt(plain, keyring);
    const b = encrypt(plain, keyring);
    expect(isEncrypted(a)).toBe(true);
    expect(a.equals(b)).toBe(false);
    expect(a.includes(plain.subarray(0, 32))).toBe(false);
    expect(decrypt(a, keyring, 'obj').equals(plain)).toBe(true);
    expect(keyIdOf(a)).toBe('k2026');
  });

  it('reads objects written under a rotated-out key while it stays configured', () => {
    const old = encrypt(Buffer.from('written in 2025'), { current: k2025, all: [k2025] });
    const rotated: Keyring = { current: k2026, all: [k2026, k2025] };
    expect(decrypt(old, rotated, 'obj').toString()).toBe('written in 2025');
  });

  it('names the missing key, the object, and what to configure', () => {
    const old = encrypt(Buffer.from('x'), { current: k2025, all: [k2025] });
    const err = errorOf(() => decrypt(old, { current: k2026, all: [k2026] }, 's3://b/changes/x.avro'));
    expect(err.code).toBe('KEY_MISSING');
    expect(err.message).toBe(
      's3://b/changes/x.avro is encrypted with master key "k2025", which is not configured',
    );
  });

  it('says so when a different key is configured under the same id', () => {
    const body = encrypt(Buffer.from('x'), { current: k2025, all: [k2025] });
    const impostor = parseMasterKey('k2025', randomBytes(32).toString('hex'), 'archive.keys.k2025');
    expect(errorOf(() => decrypt(body, { current: impostor, all: [impostor] }, 'obj')).code).toBe(
      'KEY_WRONG',
    );
  });

  it('refuses damaged ciphertext instead of returning altered bytes', () => {
    const keyring: Keyring = { current: k2026, all: [k2026] };
    const body = encrypt(Buffer.from('the original message'), keyring);
    body[body.length - 3] = (body[body.length - 3] ?? 0) ^ 0xff;
    expect(errorOf(() => decrypt(body, keyring, 'obj')).code).toBe('OBJECT_CORRUPT');
  });

  it('rejects a master key of the wrong length, saying how to make one', () => {
    expect(() => parseMasterKey('k', 'abcd', 'archive.keys.k')).toThrow(/32 bytes/);
  });
});
