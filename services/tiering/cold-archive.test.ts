import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import {
  configSchema,
  createLogger,
  formatPosition,
  HEADER_SCHEMA,
  listManifestEntries,
  LocalDirObjectStore,
  parseColumnType,
  readAvroFile,
  readDataFile,
  TableCodec,
  type ChangeEvent,
  type ColdConfig,
  type Keyring,
  type SchemaCatalog,
} from '../core/index.js';
import { ColdArchive, cutMetadata, parseCutMetadata } from './cold-archive.js';
import type { Committed, PartitionContext } from './consumer.js';
import { TierMetrics } from './metrics.js';

const codec = new TableCodec({
  db: 'chat',
  table: 'messages',
  primaryKey: ['id'],
  columns: [
    parseColumnType('id', 'bigint(20)'),
    parseColumnType('room_id', 'int(11)'),
    parseColumnType('body', 'varchar(100)'),
  ],
});
const altered = new TableCodec({
  ...codec.table,
  columns: [...codec.table.columns, parseColumnType('edited', 'tinyint(1)')],
});
const HOUR = 3_600_000;

async function errorOf(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a failure');
}
const T0 = Date.UTC(2026, 2, 1, 10, 0, 0);

function message(offset: number, tsMs: number, c: TableCodec = codec): KafkaMessage {
  const id = BigInt(offset);
  const event: ChangeEvent = {
    op: 'c',
    before: null,
    after: { id, room_id: offset % 5, body: `m${offset}`, ...(c === altered ? { edited: 0 } : {}) },
    key: `["${id}"]`,
    tsMs,
    pos: { file: 1, offset: 1000 + offset * 10, row: 0 },
    tx: null,
    source: { serverId: 1, db: 'chat', table: 'messages', schemaVersion: c.version },
  };
  return {
    key: Buffer.from(event.key),
    value: c.encode(event),
    offset: String(offset),
    timestamp: String(tsMs),
    attributes: 0,
    headers: { [HEADER_SCHEMA]: Buffer.from(c.version) },
  };
}

/** A partition's group offset in memory, as Kafka keeps it. */
class FakePartition implements PartitionContext {
  generation = 1;
  committedOffset: Committed = { offset: -1n, metadata: null };
  commits: Committed[] = [];
  failNextCommitAfter = Infinity;
  heartbeat = () => Promise.resolve();
  isStale = () => false;
  commit(offset: bigint, metadata: string | null = null): Promise<void> {
    if (this.commits.length >= this.failNextCommitAfter) return Promise.reject(new Error('kafka down'));
    this.committedOffset = { offset, metadata };
    this.commits.push({ offset, metadata });
    return Promise.resolve();
  }
  committed = () => Promise.resolve(this.committedOffset);
  lowWatermark = () => Promise.resolve(0n);
}

const catalog = {
  codecFor: (version: string) => {
    const c = [codec, altered].find((x) => x.version === version);
    return c ? Promise.resolve(c) : Promise.reject(new Error(`unknown ${version}`));
  },
} as unknown as SchemaCatalog;

function archive(dir: string, cold: Partial<ColdConfig> = {}, keyring?: Keyring) {
  const config = configSchema.parse({
    tier: {
      cold: {
        url: `dir:${dir}`,
        prefix: 'a',
        rotate: { maxEvents: 4 },
        columnStats: { 'chat.messages': ['room_id'] },
      },
    },
  }).tier!.cold!;
  return {
    store: new LocalDirObjectStore(dir),
    sink: new ColdArchive({
      store: new LocalDirObjectStore(dir),
      config: { ...config, ...cold },
      keyring,
      catalog,
      logger: createLogger({ level: 'silent' }),
      metrics: new TierMetrics(),
    }),
  };
}

const batch = (messages: KafkaMessage[]) => ({
  topic: 't.chat.messages',
  partition: 0,
  messages,
  highWatermark: 100n,
});

async function entries(store: LocalDirObjectStore) {
  const out = [];
  for await (const e of listManifestEntries(store, 'a', 'chat', 'messages')) out.push(e);
  return out.sort((x, y) => Number(x.first_offset - y.first_offset));
}

describe('cold archive', () => {
  it('cuts files by count, hour and schema version, tiling the offsets, and records each cut before uploading', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-cold-'));
    const { store, sink } = archive(dir);
    const ctx = new FakePartition();
    const msgs = [
      ...[0, 1, 2, 3, 4, 5].map((o) => message(o, T0 + o * 1000)),
      message(7, T0 + HOUR), // offset 6 is a transaction marker; the hour changes
      message(8, T0 + HOUR + 1, altered),
    ];
    await sink.apply(batch(msgs), ctx);
    await sink.idle();
    const written = await entries(store);
    expect(written.map((e) => [e.first_offset, e.last_offset, e.rows])).toEqual([
      [0n, 3n, 4n],
      [4n, 5n, 2n],
      [6n, 7n, 1n],
    ]);
    expect(written[0]?.object_key).toBe(
      'a/changes/chat.messages/dt=2026-03-01/hour=10/0-00000000000000000000-00000000000000000003.avro',
    );
    expect(written[2]?.object_key).toContain('/hour=11/');
    expect(written[0]?.column_stats.room_id).toEqual({ min: '0', max: '3' });
    // Each cut: first its end recorded at the file's start, then the offset moved past it.
    expect(ctx.commits.slice(0, 2)).toEqual([
      { offset: 0n, metadata: cutMetadata(3n) },
      { offset: 4n, metadata: null },
    ]);
    // The file of the altered schema is still open: its records are not committed.
    expect(ctx.committedOffset).toEqual({ offset: 8n, metadata: null });
    const file = await readAvroFile(await store.get(written[0]!.object_key), 'f');
    expect(file.records).toHaveLength(4);
  });

  it('after a crash between upload and commit, cuts the very same file again from the recorded end', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-cold-'));
    const first = archive(dir, { rotate: { maxEvents: 3, maxBytes: 1 << 20, maxSpanSeconds: 600 } });
    const ctx = new FakePartition();
    ctx.failNextCommitAfter = 1; // the intent lands, the commit after the upload does not
    await first.sink.apply(batch([0, 1, 2, 3].map((o) => message(o, T0))), ctx);
    // The upload runs while the next file fills; its failure comes out at the next cut or when waited for.
    await expect(first.sink.idle()).rejects.toThrow('kafka down');
    expect(ctx.committedOffset).toEqual({ offset: 0n, metadata: cutMetadata(2n) });

    // A new process with other rotation settings: the recorded end wins, so no overlap appears.
    const second = archive(dir, { rotate: { maxEvents: 100, maxBytes: 1 << 20, maxSpanSeconds: 600 } });
    const ctx2 = new FakePartition();
    ctx2.committedOffset = ctx.committedOffset;
    await second.sink.apply(batch([0, 1, 2, 3, 4].map((o) => message(o, T0))), ctx2);
    await second.sink.idle();
    const written = await entries(second.store);
    expect(written.map((e) => [e.first_offset, e.last_offset])).toEqual([[0n, 2n]]);
    expect(ctx2.committedOffset).toEqual({ offset: 3n, metadata: null });
    expect(parseCutMetadata(cutMetadata(2n))).toBe(2n);
  });

  it('uploads a file while the next one fills, and tries a failed upload again before the next cut', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-cold-'));
    const { store, sink } = archive(dir);
    const ctx = new FakePartition();
    const put = store.put.bind(store);
    let failPuts = 1;
    // The sink's own store: the first upload fails once.
    const sinkStore = (sink as unknown as { o: { store: LocalDirObjectStore } }).o.store;
    sinkStore.put = (key, body) =>
      failPuts-- > 0 ? Promise.reject(new Error('store down')) : put(key, body);
    await sink.apply(batch([0, 1, 2, 3, 4].map((o) => message(o, T0))), ctx);
    // The file 0–3 was cut (its end recorded) and its upload failed; nothing moved past it.
    expect(ctx.committedOffset).toEqual({ offset: 0n, metadata: cutMetadata(3n) });
    // The next cut waits for it: the failed upload is tried again first, then this file's end is recorded.
    await sink.apply(batch([5, 6, 7, 8].map((o) => message(o, T0))), ctx);
    await sink.idle();
    expect((await entries(store)).map((e) => [e.first_offset, e.last_offset])).toEqual([
      [0n, 3n],
      [4n, 7n],
    ]);
    expect(ctx.commits).toEqual([
      { offset: 0n, metadata: cutMetadata(3n) },
      { offset: 4n, metadata: null },
      { offset: 4n, metadata: cutMetadata(7n) },
      { offset: 8n, metadata: null },
    ]);
  });

  it('cuts no file when partitions read at once both meet a schema version first', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-cold-'));
    const { store, sink } = archive(dir);
    const msgs = [0, 1, 2, 3].map((o) => message(o, T0));
    await Promise.all([
      sink.apply(batch(msgs), new FakePartition()),
      sink.apply({ ...batch(msgs), partition: 1 }, new FakePartition()),
    ]);
    await sink.idle();
    expect((await entries(store)).map((e) => [e.partition, e.first_offset, e.last_offset])).toEqual([
      [0, 0n, 3n],
      [1, 0n, 3n],
    ]);
  });

  it('marks a file whose positions do not always grow (a re-sent change inside it)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-cold-'));
    const { store, sink } = archive(dir);
    const ctx = new FakePartition();
    const resent = message(1, T0 + 1000);
    await sink.apply(
      batch([message(0, T0), message(1, T0 + 1000), message(2, T0 + 2000), message(3, T0 + 3000)]),
      ctx,
    );
    await sink.apply(
      batch([
        message(4, T0 + 4000),
        { ...resent, offset: '5' },
        message(6, T0 + 6000),
        message(7, T0 + 7000),
      ]),
      ctx,
    );
    await sink.idle();
    expect((await entries(store)).map((e) => [e.first_offset, e.positions_ascending])).toEqual([
      [0n, true],
      [4n, false],
    ]);
  });

  it('closes a file left open on a quiet partition after flushAfterSeconds', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-cold-'));
    const { store, sink } = archive(dir, { flushAfterSeconds: 0.05 });
    const ctx = new FakePartition();
    await sink.apply(batch([message(0, T0), message(1, T0)]), ctx);
    expect(await entries(store)).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 80));
    await sink.tick(() => ctx);
    await sink.idle();
    expect((await entries(store)).map((e) => e.rows)).toEqual([2n]);
  });

  it('encrypts files with the current master key; old keys keep reading, a missing or wrong key is named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-cold-'));
    const k1 = { id: 'k1', key: Buffer.alloc(32, 1) };
    const k2 = { id: 'k2', key: Buffer.alloc(32, 2) };
    const first = archive(dir, {}, { current: k1, all: [k1] });
    const ctx = new FakePartition();
    await first.sink.apply(batch([0, 1, 2, 3].map((o) => message(o, T0))), ctx);
    await first.sink.idle();
    const rotated = archive(dir, {}, { current: k2, all: [k1, k2] });
    await rotated.sink.apply(batch([4, 5, 6, 7].map((o) => message(o, T0))), ctx);
    await rotated.sink.idle();
    const written = await entries(first.store);
    expect(written.map((e) => e.key_id)).toEqual(['k1', 'k2']);
    for (const e of written) {
      const body = await readDataFile(first.store, e, { current: k2, all: [k1, k2] });
      expect((await readAvroFile(body, e.object_key)).records).toHaveLength(4);
    }
    const missing = await errorOf(readDataFile(first.store, written[0]!, { current: k2, all: [k2] }));
    expect(missing).toMatchObject({ code: 'KEY_MISSING' });
    expect(missing.message).toContain('"k1"');
    const wrong = await errorOf(
      readDataFile(first.store, written[0]!, { current: { id: 'k1', key: Buffer.alloc(32, 9) }, all: [] }),
    );
    expect(wrong).toMatchObject({ code: 'KEY_WRONG' });
    expect(await errorOf(readDataFile(first.store, written[0]!, undefined))).toMatchObject({
      code: 'KEY_MISSING',
    });
  });

  it('without statistics columns, reads only times and positions: the same ranges, no column stats', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-cold-'));
    const { store, sink } = archive(dir, { columnStats: {} });
    const ctx = new FakePartition();
    await sink.apply(batch([3, 1, 2, 0].map((o, i) => message(i, T0 + o * 1000))), ctx);
    await sink.idle();
    const [entry] = await entries(store);
    expect(entry).toMatchObject({
      first_offset: 0n,
      last_offset: 3n,
      rows: 4n,
      min_ts_ms: BigInt(T0),
      max_ts_ms: BigInt(T0 + 3000),
      first_pos: formatPosition({ file: 1, offset: 1000, row: 0 }),
      last_pos: formatPosition({ file: 1, offset: 1030, row: 0 }),
      positions_ascending: true,
      column_stats: {},
    });
    const file = await readAvroFile(await store.get(entry!.object_key), 'f');
    expect(file.records).toHaveLength(4);
    // Bytes that do not decode still stop the partition, though the images are skipped rather than read.
    const bad = { ...message(4, T0), value: Buffer.from([1, 2, 3]) };
    const err = await errorOf(sink.apply(batch([bad]), ctx));
    expect(err).toMatchObject({ code: 'EVENT_UNREADABLE' });
  });

  it('refuses an offset beyond 2^53 rather than rounding it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-cold-'));
    const { sink } = archive(dir);
    const ctx = new FakePartition();
    ctx.committedOffset = { offset: 2n ** 53n + 1n, metadata: null };
    const err = await errorOf(sink.apply(batch([message(0, T0)]), ctx));
    expect(err).toMatchObject({ code: 'OFFSET_UNSUPPORTED' });
    expect(err.message).toContain('t.chat.messages[0] is at offset 9007199254740993');
  });

  it('stops on an event it cannot read, naming topic, partition and offset', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-cold-'));
    const { sink } = archive(dir);
    const bad = { ...message(3, T0), value: Buffer.from([1, 2, 3]) };
    const err = await errorOf(sink.apply(batch([message(2, T0), bad]), new FakePartition()));
    expect(err).toMatchObject({ code: 'EVENT_UNREADABLE' });
    expect(err.message).toContain('t.chat.messages partition 0 offset 3');
  });
});
