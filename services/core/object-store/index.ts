// Opens the object store an archive URL names: `s3://bucket[/prefix]` or `dir:/path` (a bare absolute path too).

import { TidemarkError } from '../errors.js';
import { LocalDirObjectStore } from './local-dir.js';
import { S3ObjectStore, type S3Settings } from './s3.js';
import type { ObjectStore } from './store.js';

export * from './store.js';
export { LocalDirObjectStore } from './local-dir.js';
export { S3ObjectStore, type S3Settings } from './s3.js';

export function openObjectStore(url: string, s3: Omit<S3Settings, 'bucket' | 'prefix'> = {}): ObjectStore {
  const s3Url = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  if (s3Url) return new S3ObjectStore({ ...s3, bucket: s3Url[1] as string, prefix: s3Url[2] ?? '' });
  if (url.startsWith('dir:')) return new LocalDirObjectStore(url.slice('dir:'.length));
  if (url.startsWith('/')) return new LocalDirObjectStore(url);
  throw new TidemarkError('CONFIG_INVALID', `"${url}" is not an archive location`, {
    hint: 'write s3://<bucket>/<prefix> for S3-compatible storage or dir:/absolute/path for a local directory',
  });
}
