// Object store on any S3-compatible service (AWS S3, MinIO, …). Every write carries its SHA-256 so the
// service itself refuses a body damaged on the way; large objects go up in parts.

import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { TidemarkError } from '../errors.js';
import {
  checkKey,
  notFound,
  sha256ForPut,
  verifySha256,
  type GetOptions,
  type ObjectInfo,
  type ObjectStore,
  type PutOptions,
} from './store.js';

export interface S3Settings {
  bucket: string;
  /** Key prefix inside the bucket ('' for none). */
  prefix?: string;
  endpoint?: string;
  region?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Path-style URLs (MinIO and most self-hosted stores need them). */
  forcePathStyle?: boolean;
  /** Objects larger than this go up in parts of this size. */
  partBytes?: number;
}

const DEFAULT_PART_BYTES = 16 * 1024 * 1024;
const base64 = (hex: string) => Buffer.from(hex, 'hex').toString('base64');

export class S3ObjectStore implements ObjectStore {
  readonly url: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly partBytes: number;

  constructor(settings: S3Settings) {
    this.bucket = settings.bucket;
    this.prefix = settings.prefix ? `${settings.prefix.replace(/\/+$/, '')}/` : '';
    this.url = `s3://${this.bucket}${this.prefix ? `/${this.prefix.slice(0, -1)}` : ''}`;
    this.partBytes = settings.partBytes ?? DEFAULT_PART_BYTES;
    this.client = new S3Client({
      region: settings.region ?? 'us-east-1',
      forcePathStyle: settings.forcePathStyle ?? true,
      ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
      ...(settings.accessKeyId && settings.secretAccessKey
        ? { credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey } }
        : {}),
    });
  }

  private fullKey(key: string): string {
    checkKey(key);
    return `${this.prefix}${key}`;
  }

  /** Turns the SDK's errors into ones that say which store, which object and what to check. */
  private failure(action: string, key: string, err: unknown): TidemarkError {
    const name = (err as { name?: string }).name ?? '';
    const message = (err as Error).message;
    if (name === 'NoSuchBucket') {
      return new TidemarkError(
        'OBJECT_STORE_UNAVAILABLE',
        `bucket ${this.bucket} does not exist (${this.url})`,
        {
          cause: err,
          hint: 'create the bucket, or correct the archive URL',
        },
      );
    }
    if (name === 'AccessDenied' || name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch') {
      return new TidemarkError(
        'OBJECT_STORE_UNAVAILABLE',
        `${this.url} refused to ${action} ${key}: ${message}`,
        {
          cause: err,
          hint: 'check the access key, the secret and the bucket policy (tidemark needs s3:GetObject, s3:PutObject, s3:ListBucket, s3:DeleteObject)',
        },
      );
    }
    if (name === 'BadDigest' || /checksum/i.test(name) || /checksum/i.test(message)) {
      return new TidemarkError(
        'OBJECT_CORRUPT',
        `${this.url} rejected ${key}: the body does not match its SHA-256 (${message})`,
        { cause: err },
      );
    }
    return new TidemarkError('OBJECT_STORE_UNAVAILABLE', `cannot ${action} ${this.url}/${key}: ${message}`, {
      cause: err,
    });
  }

  async put(key: string, body: Buffer, options: PutOptions = {}): Promise<ObjectInfo> {
    const sha256 = sha256ForPut(this.url, key, body, options.sha256);
    const Key = this.fullKey(key);
    try {
      if (body.length <= this.partBytes) {
        await this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key,
            Body: body,
            ChecksumAlgorithm: 'SHA256',
            ChecksumSHA256: base64(sha256),
          }),
        );
      } else {
        await this.putInParts(Key, body);
      }
    } catch (err) {
      if (err instanceof TidemarkError) throw err;
      throw this.failure('write', key, err);
    }
    return { key, size: body.length, sha256 };
  }

  private async putInParts(Key: string, body: Buffer): Promise<void> {
    const { UploadId } = await this.client.send(
      new CreateMultipartUploadCommand({ Bucket: this.bucket, Key, ChecksumAlgorithm: 'SHA256' }),
    );
    try {
      const parts: { PartNumber: number; ETag: string | undefined; ChecksumSHA256: string }[] = [];
      for (let offset = 0, n = 1; offset < body.length; offset += this.partBytes, n++) {
        const part = body.subarray(offset, offset + this.partBytes);
        const ChecksumSHA256 = createHash('sha256').update(part).digest('base64');
        const { ETag } = await this.client.send(
          new UploadPartCommand({
            Bucket: this.bucket,
            Key,
            UploadId,
            PartNumber: n,
            Body: part,
            ChecksumAlgorithm: 'SHA256',
            ChecksumSHA256,
          }),
        );
        parts.push({ PartNumber: n, ETag, ChecksumSHA256 });
      }
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key,
          UploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
    } catch (err) {
      // An abandoned upload would keep its parts (and their cost) until a lifecycle rule removed them.
      await this.client
        .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId }))
        .catch(() => undefined);
      throw err;
    }
  }

  async get(key: string, options: GetOptions = {}): Promise<Buffer> {
    let body: Buffer;
    try {
      const out = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key), ChecksumMode: 'ENABLED' }),
      );
      body = Buffer.from(await out.Body!.transformToByteArray());
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey') throw notFound(this.url, key, err);
      throw this.failure('read', key, err);
    }
    verifySha256(this.url, key, body, options.sha256);
    return body;
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const out = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) }),
      );
      return { key, size: out.ContentLength ?? 0 };
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name === 'NotFound' || name === 'NoSuchKey') return undefined;
      throw this.failure('inspect', key, err);
    }
  }

  async *list(prefix: string, options: { startAfter?: string } = {}): AsyncIterable<ObjectInfo> {
    let ContinuationToken: string | undefined;
    do {
      let out;
      try {
        out = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: `${this.prefix}${prefix}`,
            ContinuationToken,
            ...(options.startAfter !== undefined && ContinuationToken === undefined
              ? { StartAfter: `${this.prefix}${options.startAfter}` }
              : {}),
          }),
        );
      } catch (err) {
        throw this.failure('list', prefix, err);
      }
      for (const o of out.Contents ?? []) {
        if (o.Key !== undefined) yield { key: o.Key.slice(this.prefix.length), size: o.Size ?? 0 };
      }
      ContinuationToken = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (ContinuationToken !== undefined);
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      try {
        const out = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((k) => ({ Key: this.fullKey(k) })), Quiet: true },
          }),
        );
        const failed = out.Errors ?? [];
        if (failed.length > 0) {
          throw new TidemarkError(
            'OBJECT_STORE_UNAVAILABLE',
            `${this.url} did not delete ${failed.length} objects, e.g. ${failed[0]?.Key}: ${failed[0]?.Message}`,
          );
        }
      } catch (err) {
        if (err instanceof TidemarkError) throw err;
        throw this.failure('delete', batch[0] ?? '', err);
      }
    }
  }

  close(): void {
    this.client.destroy();
  }
}
