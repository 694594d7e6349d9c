// Object store in a local directory: the embedded default for one machine. Writes go to a temporary file
// that is renamed into place, so a reader never sees half an object.

import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
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

export class LocalDirObjectStore implements ObjectStore {
  readonly url: string;

  constructor(private readonly root: string) {
    this.url = `dir:${root}`;
  }

  private path(key: string): string {
    checkKey(key);
    return join(this.root, ...key.split('/'));
  }

  /** The file that holds an object, for readers that read it synchronously in place. */
  localPath(key: string): string {
    return this.path(key);
  }

  async put(key: string, body: Buffer, options: PutOptions = {}): Promise<ObjectInfo> {
    const target = this.path(key);
    const sha256 = sha256ForPut(this.url, key, body, options.sha256);
    await mkdir(dirname(target), { recursive: true });
    const temporary = `${target}.${randomUUID()}.tmp`;
    const file = await open(temporary, 'wx');
    try {
      await file.writeFile(body);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temporary, target);
    return { key, size: body.length, sha256 };
  }

  async get(key: string, options: GetOptions = {}): Promise<Buffer> {
    let body: Buffer;
    try {
      body = await readFile(this.path(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(this.url, key, err);
      throw err;
    }
    verifySha256(this.url, key, body, options.sha256);
    return body;
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await stat(this.path(key));
      return { key, size: s.size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async *list(prefix: string, options: { startAfter?: string } = {}): AsyncIterable<ObjectInfo> {
    // Walk only the directory the prefix names, not the whole archive.
    const slash = prefix.lastIndexOf('/');
    const base = slash < 0 ? this.root : join(this.root, ...prefix.slice(0, slash).split('/'));
    const keys: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const entry of entries) {
        const full = join(dir, entry.name);
        if (entry.isDirectory()) await walk(full);
        else if (!entry.name.endsWith('.tmp')) keys.push(relative(this.root, full).split(sep).join('/'));
      }
    };
    await walk(base);
    keys.sort();
    for (const key of keys) {
      if (!key.startsWith(prefix) || (options.startAfter !== undefined && key <= options.startAfter))
        continue;
      const s = await stat(join(this.root, ...key.split('/')));
      yield { key, size: s.size };
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      await unlink(this.path(key)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    }
  }

  /** Removes the whole store directory (tests and scratch restores only). */
  async destroy(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
  }
}
