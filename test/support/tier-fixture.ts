// A chat database captured by a real `tidemark capture` process and tiered by a real `tidemark tier`
// process, with its own topic prefix, MongoDB database and archive location.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { openObjectStore, type ObjectStore } from '../../services/core/index.js';
import { captureFixture, type CaptureFixture } from './capture-fixture.js';
import { CaptureProcess } from './capture-process.js';
import { localServices, s3Settings, uniqueName } from './local-services.js';

export const CHAT_TABLES = [
  `CREATE TABLE messages (
     id BIGINT UNSIGNED PRIMARY KEY,
     room_id INT NOT NULL,
     user_id BIGINT NOT NULL,
     body TEXT,
     amount DECIMAL(20,6),
     meta JSON,
     attachment VARBINARY(64),
     created_at DATETIME(6) NOT NULL,
     KEY (room_id, created_at))`,
  'CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR(50), karma BIGINT, seen_at TIMESTAMP(6) NULL)',
  `CREATE TABLE memberships (room_id INT, user_id INT, role ENUM('owner','member'),
     PRIMARY KEY (room_id, user_id))`,
];

export interface TierFixture {
  fx: CaptureFixture;
  capture: CaptureProcess;
  tierRaw: Record<string, unknown>;
  mongoDatabase: string;
  archivePrefix: string;
  store: ObjectStore;
  /** A new tier process on the fixture's configuration (not started). */
  newTier(overrides?: (raw: Record<string, unknown>) => void): Promise<CaptureProcess>;
  mongo(): Promise<MongoClient>;
  drop(): Promise<void>;
}

export interface TierFixtureOptions {
  store?: 'dir' | 's3';
  tables?: string[];
  configureTier?: (tier: Record<string, unknown>) => void;
  /** Kafka partitions of the change topics capture creates. */
  partitions?: number;
  /** Changes to capture's configuration (column rules, …). */
  configureCapture?: (raw: Record<string, unknown>, db: string) => void;
}

export async function tierFixture(o: TierFixtureOptions = {}): Promise<TierFixture> {
  const s = localServices();
  const fx = await captureFixture({
    tables: o.tables ?? CHAT_TABLES,
    ...(o.configureCapture ? { configure: o.configureCapture } : {}),
  });
  const mongoDatabase = uniqueName('tm_hot');
  const archivePrefix = uniqueName('archive');
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-archive-'));
  const s3 = s3Settings();
  const url = o.store === 's3' ? `s3://${s.s3.bucket}` : `dir:${dir}`;
  const tier: Record<string, unknown> = {
    hot: {
      uri: s.mongodb.uri,
      database: mongoDatabase,
      tables: {
        [`${fx.db}.messages`]: {
          window: { column: 'created_at', days: 30 },
          indexes: [['room_id', 'created_at']],
        },
      },
      evictEverySeconds: 2,
    },
    cold: {
      url,
      prefix: archivePrefix,
      ...(o.store === 's3' ? { s3 } : {}),
      rotate: { maxEvents: 200 },
      flushAfterSeconds: 1,
      columnStats: { [`${fx.db}.messages`]: ['room_id', 'user_id'] },
    },
    retry: { minMs: 200, maxMs: 2000 },
    topicRefreshSeconds: 2,
  };
  o.configureTier?.(tier);
  if (o.partitions) fx.raw.kafka = { ...(fx.raw.kafka as object), partitions: o.partitions };
  const tierRaw = { kafka: fx.raw.kafka, tier, log: fx.raw.log };
  const capture = await CaptureProcess.create(fx.raw);
  const store = openObjectStore(url, s3);
  const clients: MongoClient[] = [];
  const procs: CaptureProcess[] = [capture];
  return {
    fx,
    capture,
    tierRaw,
    mongoDatabase,
    archivePrefix,
    store,
    newTier: async (overrides) => {
      const raw = structuredClone(tierRaw);
      overrides?.(raw);
      const proc = await CaptureProcess.create(raw, 'tier');
      procs.push(proc);
      return proc;
    },
    mongo: async () => {
      const client = new MongoClient(s.mongodb.uri, { useBigInt64: true });
      await client.connect();
      clients.push(client);
      return client;
    },
    drop: async () => {
      for (const p of procs) await p.kill9().catch(() => undefined);
      for (const c of clients) await c.close().catch(() => undefined);
      const client = new MongoClient(s.mongodb.uri);
      await client.connect();
      await client
        .db(mongoDatabase)
        .dropDatabase()
        .catch(() => undefined);
      await client.close();
      await fx.drop();
    },
  };
}
