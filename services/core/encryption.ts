// Client-side encryption at rest: each object gets its own random data key (AES-256-GCM), and that key is
// stored with the object wrapped by a master key named by an id, so master keys can be rotated while
// objects written under older ones stay readable as long as those keys are configured.
//
// Envelope: "TMENC1" | key-id length (1 byte) | key id (utf8) | wrap IV (12) | wrapped data key (32) |
//           wrap tag (16) | data IV (12) | data tag (16) | ciphertext

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { TidemarkError } from './errors.js';

const MAGIC = Buffer.from('TMENC1');
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

export interface MasterKey {
  id: string;
  /** 32 bytes. */
  key: Buffer;
}

export interface Keyring {
  /** The key new objects are encrypted with. */
  current: MasterKey;
  /** Every key that may still be needed to read older objects (the current one included or not). */
  all: readonly MasterKey[];
}

/** Reads a master key given as 64 hex characters or 44 base64 characters, naming the setting when it is wrong. */
export function parseMasterKey(id: string, text: string, field: string): MasterKey {
  const trimmed = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed)
    ? Buffer.from(trimmed, 'hex')
    : Buffer.from(trimmed, 'base64');
  if (key.length !== KEY_BYTES || !/^[A-Za-z0-9._-]{1,64}$/.test(id)) {
    throw new TidemarkError(
      'CONFIG_INVALID',
      `${field}: a master key needs an id of letters, digits, '.', '_' or '-' and 32 bytes of key`,
      {
        hint: 'generate one with: openssl rand -hex 32',
      },
    );
  }
  return { id, key };
}

export function isEncrypted(body: Buffer): boolean {
  return body.length >= MAGIC.length && body.subarray(0, MAGIC.length).equals(MAGIC);
}

function seal(key: Buffer, plain: Buffer): { iv: Buffer; tag: Buffer; data: Buffer } {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const data = Buffer.concat([cipher.update(plain), cipher.final()]);
  return { iv, tag: cipher.getAuthTag(), data };
}

function open(key: Buffer, iv: Buffer, tag: Buffer, data: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(data), decipher.final()]);
}

export function encrypt(plain: Buffer, keyring: Keyring): Buffer {
  const dataKey = randomBytes(KEY_BYTES);
  const wrapped = seal(keyring.current.key, dataKey);
  const body = seal(dataKey, plain);
  const id = Buffer.from(keyring.current.id, 'utf8');
  return Buffer.concat([
    MAGIC,
    Buffer.from([id.length]),
    id,
    wrapped.iv,
    wrapped.data,
    wrapped.tag,
    body.iv,
    body.tag,
    body.data,
  ]);
}

/** The id of the master key an encrypted object needs. */
export function keyIdOf(envelope: Buffer): string {
  if (!isEncrypted(envelope)) throw new TidemarkError('OBJECT_CORRUPT', 'not a tidemark-encrypted object');
  const length = envelope[MAGIC.length] ?? 0;
  return envelope.subarray(MAGIC.length + 1, MAGIC.length + 1 + length).toString('utf8');
}

/** Decrypts; `name` says which object, for the error when the key is missing, wrong, or the bytes damaged. */
export function decrypt(envelope: Buffer, keyring: Keyring, name: string): Buffer {
  const id = keyIdOf(envelope);
  const master =
    keyring.all.find((k) => k.id === id) ?? (keyring.current.id === id ? keyring.current : undefined);
  if (!master) {
    throw new TidemarkError(
      'KEY_MISSING',
      `${name} is encrypted with master key "${id}", which is not configured`,
      {
        hint: `add the key with id "${id}" to the archive's keys (old keys must stay configured after a rotation)`,
      },
    );
  }
  let at = MAGIC.length + 1 + Buffer.byteLength(id, 'utf8');
  const take = (n: number) => envelope.subarray(at, (at += n));
  const wrapIv = take(IV_BYTES);
  const wrappedKey = take(KEY_BYTES);
  const wrapTag = take(TAG_BYTES);
  const iv = take(IV_BYTES);
  const tag = take(TAG_BYTES);
  const data = envelope.subarray(at);
  let dataKey: Buffer;
  try {
    dataKey = open(master.key, wrapIv, wrapTag, wrappedKey);
  } catch (err) {
    throw new TidemarkError(
      'KEY_WRONG',
      `${name} does not decrypt with the configured master key "${id}": a different key carries that id, or the object is damaged`,
      {
        cause: err,
        hint: `configure the key that was id "${id}" when the object was written`,
      },
    );
  }
  try {
    return open(dataKey, iv, tag, data);
  } catch (err) {
    throw new TidemarkError('OBJECT_CORRUPT', `${name} is damaged: its encrypted bytes fail authentication`, {
      cause: err,
    });
  }
}
