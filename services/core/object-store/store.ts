// The object store behind the archive: one small interface, two backends (S3-compatible, local directory).

import { createHash } from 'node:crypto';
import { TidemarkError } from '../errors.js';

export interface ObjectInfo {
  key: string;
  size: number;
  /** Hex SHA-256 of the whole object, where the backend knows it. */
  sha256?: string;
}

export interface PutOptions {
  /** Expected hex SHA-256 of the body; a mismatch refuses the write. */
  sha256?: string;
}

export interface GetOptions {
  /** Expected hex SHA-256; an object that does not match is reported as corrupt, never returned. */
  sha256?: string;
}

export interface ObjectStore {
  /** Where the store is, for messages: `s3://bucket/prefix` or `dir:/path`. */
  readonly url: string;
  put(key: string, body: Buffer, options?: PutOptions): Promise<ObjectInfo>;
  get(key: string, options?: GetOptions): Promise<Buffer>;
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Objects whose key starts with `prefix`, in key order, optionally only those after `startAfter`. */
  list(prefix: string, options?: { startAfter?: string }): AsyncIterable<ObjectInfo>;
  delete(keys: readonly string[]): Promise<void>;
  /** Where an object lies on local disk, for stores that keep objects as files. */
  localPath?(key: string): string;
}

export function sha256Hex(body: Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}

/** Keys are relative, '/'-separated, without '.' or '..' segments, so no backend can be led outside its root. */
export function checkKey(key: string): void {
  if (
    key.length === 0 ||
    key.startsWith('/') ||
    key.split('/').some((part) => part === '' || part === '.' || part === '..')
  ) {
    throw new TidemarkError(
      'INTERNAL',
      `"${key}" is not a valid object key (relative, '/'-separated, no empty, '.' or '..' parts)`,
    );
  }
}

export function verifySha256(url: string, key: string, body: Buffer, expected: string | undefined): void {
  if (expected === undefined) return;
  const actual = sha256Hex(body);
  if (actual !== expected) {
    throw new TidemarkError(
      'OBJECT_CORRUPT',
      `object ${url}/${key} is corrupt: its SHA-256 is ${actual}, the manifest says ${expected}`,
      {
        hint: 'the object changed after it was written; restore it from a copy, or run tidemark verify to list every damaged object',
      },
    );
  }
}

/** The SHA-256 of a body about to be written, refusing it when it is not the one the caller expects. */
export function sha256ForPut(url: string, key: string, body: Buffer, expected: string | undefined): string {
  const sha256 = sha256Hex(body);
  if (expected !== undefined && expected !== sha256) {
    throw new TidemarkError(
      'OBJECT_CORRUPT',
      `refusing to write ${url}/${key}: its SHA-256 is ${sha256}, expected ${expected}`,
    );
  }
  return sha256;
}

export function notFound(url: string, key: string, cause?: unknown): TidemarkError {
  return new TidemarkError(
    'OBJECT_NOT_FOUND',
    `object ${url}/${key} does not exist`,
    cause === undefined ? {} : { cause },
  );
}
