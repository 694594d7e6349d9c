// The state of one table being rebuilt: for every key, the change with the highest position seen so far.
// The result does not depend on the order changes arrive in (files of several partitions, the Kafka tail,
// the same change twice), which is what makes restores exact on an at-least-once archive.
//
// Memory is bounded: past `maxKeys` keys the state spills to hash buckets in a temporary directory, and
// each bucket is resolved on its own at the end (a grace hash), so a table of any size restores with the
// memory of `maxKeys` rows.

import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import { comparePositions, type Op, type Position, type Row } from '../core/index.js';

export interface Slot {
  pos: Position;
  tsMs: number;
  op: Op;
  tx: string | null;
  /** The row after the change; null when the change removed the key. */
  row: Row | null;
  /** Schema version (fingerprint) the row was written with. */
  version: string;
}

const BUCKETS = 64;
const FLUSH_BYTES = 1 << 20;

function bucketOf(key: string): number {
  // FNV-1a: cheap and spreads JSON key texts well.
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % BUCKETS;
}

class Spill {
  readonly dir: string;
  private readonly fds: number[] = [];
  private readonly pending: Buffer[][] = [];
  private readonly pendingBytes: number[] = [];

  constructor(parent: string) {
    this.dir = mkdtempSync(join(parent, 'tidemark-restore-'));
    for (let b = 0; b < BUCKETS; b++) {
      this.fds.push(openSync(join(this.dir, `bucket-${b}`), 'w'));
      this.pending.push([]);
      this.pendingBytes.push(0);
    }
  }

  add(key: string, slot: Slot): void {
    const b = bucketOf(key);
    const body = serialize([key, slot]);
    const head = Buffer.allocUnsafe(4);
    head.writeUInt32LE(body.length);
    (this.pending[b] as Buffer[]).push(head, body);
    this.pendingBytes[b] = (this.pendingBytes[b] as number) + body.length + 4;
    if (this.pendingBytes[b] >= FLUSH_BYTES) this.flush(b);
  }

  private flush(b: number): void {
    writeSync(this.fds[b] as number, Buffer.concat(this.pending[b] as Buffer[]));
    this.pending[b] = [];
    this.pendingBytes[b] = 0;
  }

  /** Closes the bucket files; each is then read back whole, one at a time. */
  finish(): void {
    for (let b = 0; b < BUCKETS; b++) {
      this.flush(b);
      closeSync(this.fds[b] as number);
    }
    this.closed = true;
  }

  *bucket(b: number): Generator<[string, Slot]> {
    const data = readFileSync(join(this.dir, `bucket-${b}`));
    for (let at = 0; at < data.length;) {
      const len = data.readUInt32LE(at);
      yield deserialize(data.subarray(at + 4, at + 4 + len)) as [string, Slot];
      at += 4 + len;
    }
  }

  private closed = false;

  remove(): void {
    if (!this.closed) {
      for (const fd of this.fds) closeSync(fd);
      this.closed = true;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export class KeyedState {
  private map = new Map<string, Slot>();
  private spill: Spill | undefined;

  constructor(private readonly o: { maxKeys: number; tmpDir?: string }) {}

  /** Keeps the change if it is newer than what the key holds. */
  offer(key: string, slot: Slot): void {
    if (this.spill) {
      this.spill.add(key, slot);
      return;
    }
    const held = this.map.get(key);
    if (held === undefined || comparePositions(slot.pos, held.pos) > 0) this.map.set(key, slot);
    if (this.map.size > this.o.maxKeys) {
      this.spill = new Spill(this.o.tmpDir ?? tmpdir());
      for (const [k, s] of this.map) this.spill.add(k, s);
      this.map = new Map();
    }
  }

  get spilled(): boolean {
    return this.spill !== undefined;
  }

  /**
   * Keys whose latest change left a row, in the order keys were first seen (per bucket once spilled): the
   * same input gives the same order. The state is consumed.
   */
  *rows(): Generator<[string, Slot]> {
    const live = function* (map: Map<string, Slot>): Generator<[string, Slot]> {
      for (const entry of map) if (entry[1].row !== null) yield entry;
    };
    if (!this.spill) {
      yield* live(this.map);
      this.map = new Map();
      return;
    }
    const spill = this.spill;
    try {
      spill.finish();
      for (let b = 0; b < BUCKETS; b++) {
        const bucket = new Map<string, Slot>();
        for (const [k, s] of spill.bucket(b)) {
          const held = bucket.get(k);
          if (held === undefined || comparePositions(s.pos, held.pos) > 0) bucket.set(k, s);
        }
        yield* live(bucket);
      }
    } finally {
      spill.remove();
      this.spill = undefined;
    }
  }

  /** Drops any spill files (after a failure). */
  discard(): void {
    this.spill?.remove();
    this.spill = undefined;
    this.map = new Map();
  }
}
