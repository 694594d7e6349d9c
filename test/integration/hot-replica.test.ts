// The hot replica sink against the local FerretDB, fed change events directly: window eviction and
// tombstone expiry with a moved clock, and older positions never overwriting newer ones.

import type { KafkaMessage } from 'kafkajs';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  configSchema,
  createLogger,
  HEADER_SCHEMA,
  parseColumnType,
  TableCodec,
  type ChangeEvent,
  type Row,
  type SchemaCatalog,
} from '../../services/core/index.js';
import { HotReplica, mysqlTimeText, TierMetrics } from '../../services/tiering/index.js';
import type { PartitionContext } from '../../services/tiering/consumer.js';
import { localServices, uniqueName } from '../support/local-services.js';

const DAY = 86_400_000;
const codec = new TableCodec({
  db: 'chat',
  table: 'messages',
  primaryKey: ['id'],
  columns: [
    parseColumnType('id', 'int(11)'),
    parseColumnType('body', 'varchar(50)'),
    parseColumnType('created_at', 'datetime(6)'),
  ],
});
const catalog = { get: () => codec, codecFor: () => Promise.resolve(codec) } as unknown as SchemaCatalog;

let offset = 0;
function message(op: ChangeEvent['op'], row: Row, pos: number, before: Row | null = null): KafkaMessage {
  const event: ChangeEvent = {
    op,
    before: op === 'c' || op === 'r' ? null : (before ?? row),
    after: op === 'd' ? null : row,
    key: codec.keyOf(row),
    tsMs: Date.now(),
    pos: { file: 1, offset: pos, row: 0 },
    tx: null,
    source: { serverId: 1, db: 'chat', table: 'messages', schemaVersion: codec.version },
  };
  return {
    key: Buffer.from(event.key),
    value: codec.encode(event),
    offset: String(offset++),
    timestamp: '0',
    attributes: 0,
    headers: { [HEADER_SCHEMA]: Buffer.from(codec.version) },
  };
}

const ctx: PartitionContext = {
  generation: 1,
  heartbeat: () => Promise.resolve(),
  commit: () => Promise.resolve(),
  committed: () => Promise.resolve({ offset: -1n, metadata: null }),
  lowWatermark: () => Promise.resolve(0n),
  isStale: () => false,
};

describe('hot replica', () => {
  const database = uniqueName('tm_hotunit');
  const uri = localServices().mongodb.uri;
  let client: MongoClient;
  let clock = Date.now();
  const replica = new HotReplica({
    config: configSchema.parse({
      tier: {
        hot: {
          uri,
          database,
          tables: { 'chat.messages': { window: { column: 'created_at', days: 30 } } },
          tombstoneHours: 24,
        },
      },
    }).tier!.hot!,
    catalog,
    logger: createLogger({ level: 'silent' }),
    metrics: new TierMetrics(),
    now: () => clock,
  });
  const apply = (messages: KafkaMessage[]) =>
    replica.apply({ topic: 't', partition: 0, messages, highWatermark: 0n }, ctx);
  const docs = async () =>
    (await client.db(database).collection('chat.messages').find({}).sort({ _id: 1 }).toArray()).map((d) => ({
      _id: d._id,
      body: d.body as string | undefined,
      deleted: (d._tidemark as { deleted?: boolean }).deleted ?? false,
    }));

  beforeAll(async () => {
    client = new MongoClient(uri);
    await client.connect();
  });
  afterAll(async () => {
    await replica.close();
    await client.db(database).dropDatabase();
    await client.close();
  });

  it('never lets an older position overwrite a newer one, and replays change nothing', async () => {
    const at = (days: number) => mysqlTimeText(clock - days * DAY, false);
    const v1 = { id: 1, body: 'v1', created_at: at(1) };
    const v2 = { id: 1, body: 'v2', created_at: at(1) };
    await apply([
      message('c', v1, 100),
      message('u', v2, 200, v1),
      message('c', { id: 2, body: 'b', created_at: at(2) }, 300),
    ]);
    await apply([message('c', v1, 100)]); // replayed: older than what is stored
    await apply([message('u', v1, 150, v2)]); // out of order: older than what is stored
    expect(await docs()).toEqual([
      { _id: '1', body: 'v2', deleted: false },
      { _id: '2', body: 'b', deleted: false },
    ]);
    await apply([message('d', { id: 2, body: 'b', created_at: at(2) }, 400)]);
    await apply([message('c', { id: 2, body: 'b', created_at: at(2) }, 300)]); // the delete's tombstone wins
    expect(await docs()).toEqual([
      { _id: '1', body: 'v2', deleted: false },
      { _id: '2', body: undefined, deleted: true },
    ]);
    // More than 50 updates of existing rows in one batch (FerretDB deadlocks at 100 in one command).
    const many = Array.from({ length: 120 }, (_, i) => ({ id: 1000 + i, body: 'x', created_at: at(1) }));
    await apply(many.map((r, i) => message('c', r, 1000 + i)));
    await apply(many.map((r, i) => message('u', { ...r, body: 'y' }, 2000 + i, r)));
    const updated = await client.db(database).collection('chat.messages').countDocuments({ body: 'y' });
    expect(updated).toBe(120);
  });

  it('evicts rows that left the window and tombstones past tombstoneHours, from MongoDB only', async () => {
    const at = (days: number) => mysqlTimeText(clock - days * DAY, false);
    await apply([message('c', { id: 3, body: 'old', created_at: at(29) }, 500)]);
    await apply([message('c', { id: 4, body: 'ancient', created_at: at(40) }, 600)]); // never written
    expect((await docs()).map((d) => d._id)).toContain('3');
    expect((await docs()).map((d) => d._id)).not.toContain('4');
    clock += 2 * DAY; // row 3 is now 31 days old; the tombstone of row 2 is 48 hours old
    await replica.evict();
    const left = await docs();
    expect(left.map((d) => d._id)).not.toContain('3');
    expect(left.map((d) => d._id)).not.toContain('2');
    expect(left.map((d) => d._id)).toContain('1');
  });
});
