// A chat `messages` archive for the query benchmark, written by the tier's own cold-archive writer
// (ColdArchive) from generated change events, without capture and Kafka in between (the benchmark measures
// reading, and 5M events through the whole pipeline would take most of an hour here). Events are spread
// evenly over `days` days: 80% inserts, 15% edits (before and after images), 5% deletes; two partitions by
// key, hourly files, min/max kept for room_id and user_id.

import type { KafkaMessage } from 'kafkajs';
import {
  configSchema,
  createLogger,
  HEADER_SCHEMA,
  LocalDirObjectStore,
  sleep,
  TableCodec,
  type ChangeEvent,
  type Row,
  type SchemaCatalog,
} from '../../../services/core/index.js';
import { ColdArchive } from '../../../services/tiering/cold-archive.js';
import type { Committed, PartitionContext } from '../../../services/tiering/consumer.js';
import { TierMetrics } from '../../../services/tiering/metrics.js';
import { MESSAGES_TABLE, messageBody, messageTime } from '../chat-messages.js';

export const BASE_MS = Date.UTC(2026, 1, 1);
export const DAY_MS = 86_400_000;
export const ROOMS = 500;
const PARTITIONS = 2;

export const codec = new TableCodec(MESSAGES_TABLE);

class Partition implements PartitionContext {
  generation = 1;
  private committedOffset: Committed = { offset: -1n, metadata: null };
  heartbeat = () => Promise.resolve();
  isStale = () => false;
  commit(offset: bigint, metadata: string | null = null): Promise<void> {
    this.committedOffset = { offset, metadata };
    return Promise.resolve();
  }
  committed = () => Promise.resolve(this.committedOffset);
  lowWatermark = () => Promise.resolve(0n);
}

export interface Expected {
  events: number;
  perDay: number[];
  perOp: Record<string, number>;
}

/** Writes `events` changes over `days` days under dir:<dir>, prefix `a`; returns what a reader must find. */
export async function writeArchive(dir: string, events: number, days: number): Promise<Expected> {
  const cold = configSchema.parse({
    tier: {
      cold: {
        url: `dir:${dir}`,
        prefix: 'a',
        rotate: { maxEvents: 100_000, maxSpanSeconds: 3600 },
        flushAfterSeconds: 1,
        columnStats: { 'chat.messages': ['room_id', 'user_id'] },
      },
    },
  }).tier!.cold!;
  const sink = new ColdArchive({
    store: new LocalDirObjectStore(dir),
    config: cold,
    keyring: undefined,
    catalog: { codecFor: () => Promise.resolve(codec) } as unknown as SchemaCatalog,
    logger: createLogger({ level: 'silent' }),
    metrics: new TierMetrics(),
  });
  const contexts = Array.from({ length: PARTITIONS }, () => new Partition());
  const pending: KafkaMessage[][] = Array.from({ length: PARTITIONS }, () => []);
  const offsets = Array.from({ length: PARTITIONS }, () => 0);
  const expected: Expected = {
    events: 0,
    perDay: Array.from({ length: days }, () => 0),
    perOp: { c: 0, u: 0, d: 0 },
  };
  const live: number[] = [];
  let nextId = 1;
  const step = (days * DAY_MS) / events;
  const flush = async (p: number) => {
    const messages = pending[p] as KafkaMessage[];
    if (messages.length === 0) return;
    pending[p] = [];
    await sink.apply(
      { topic: 't.chat.messages', partition: p, messages, highWatermark: BigInt(offsets[p] as number) },
      contexts[p] as Partition,
    );
  };
  for (let i = 0; i < events; i++) {
    const tsMs = Math.floor(BASE_MS + i * step);
    const roll = (i * 2654435761) % 100;
    let event: Omit<ChangeEvent, 'key'>;
    let id: number;
    const rowOf = (n: number, edit = ''): Row => ({
      id: BigInt(n),
      room_id: n % ROOMS,
      user_id: BigInt(n % 10_000),
      body: `${messageBody(n)}${edit}`,
      created_at: messageTime(BASE_MS + (n - 1) * step * 1.2, n),
    });
    const base = {
      tsMs,
      pos: { file: 1 + Math.floor(i / 1_000_000), offset: 4 + (i % 1_000_000) * 200, row: 0 },
      tx: `0-1-${i}`,
    };
    const source = { serverId: 1, db: 'chat', table: 'messages', schemaVersion: codec.version };
    if (roll < 80 || live.length < 100) {
      id = nextId++;
      live.push(id);
      event = { op: 'c', before: null, after: rowOf(id), ...base, source };
    } else if (roll < 95) {
      id = live[(i * 7919) % live.length] as number;
      event = { op: 'u', before: rowOf(id), after: rowOf(id, ' (edited)'), ...base, source };
    } else {
      const at = (i * 104_729) % live.length;
      id = live[at] as number;
      live[at] = live[live.length - 1] as number;
      live.pop();
      event = { op: 'd', before: rowOf(id), after: null, ...base, source };
    }
    const full: ChangeEvent = { ...event, key: JSON.stringify([String(id)]) };
    const p = id % PARTITIONS;
    const offset = offsets[p] as number;
    offsets[p] = offset + 1;
    (pending[p] as KafkaMessage[]).push({
      key: Buffer.from(full.key),
      value: codec.encode(full),
      offset: String(offset),
      timestamp: String(tsMs),
      attributes: 0,
      headers: { [HEADER_SCHEMA]: Buffer.from(codec.version) },
    });
    expected.events++;
    (expected.perDay[Math.floor((tsMs - BASE_MS) / DAY_MS)] as number)++;
    expected.perOp[full.op]!++;
    if ((pending[p] as KafkaMessage[]).length >= 5000) await flush(p);
  }
  for (let p = 0; p < PARTITIONS; p++) await flush(p);
  // Files still open are cut by the flush timer, as the tier does when traffic stops.
  await sleep(1100);
  await sink.tick((_topic, p) => contexts[p]);
  return expected;
}
