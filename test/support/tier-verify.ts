// Waiting for and checking what a tier process produced: replica equal to the source (inside the window),
// archive equal to what Kafka holds, metrics.

import { expect } from 'vitest';
import {
  changeTopic,
  createKafka,
  createLogger,
  encodeKey,
  SchemaCatalog,
  type Row,
} from '../../services/core/index.js';
import { mysqlTimeText } from '../../services/tiering/index.js';
import { ChangeCollector } from './change-collector.js';
import { dedupeByPosition, replayState, sameState, sourceState } from './change-ledger.js';
import type { CaptureProcess } from './capture-process.js';
import { archiveContents, comparableState, diffStates, replicaContents } from './tier-checks.js';
import type { TierFixture } from './tier-fixture.js';
import { eventually } from './eventually.js';

export { eventually };

const logger = createLogger({ level: 'warn' });
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const KEYS: Record<string, string[]> = {
  messages: ['id'],
  users: ['id'],
  memberships: ['room_id', 'user_id'],
};
export const JSON_COLUMNS: Record<string, string[]> = { messages: ['meta'] };

/** Source rows in replica form; messages only inside their 30-day window. */
async function expectedReplica(t: TierFixture, table: string) {
  const state = await sourceState(t.fx.config.source!, t.fx.db, table);
  if (table === 'messages') {
    const cutoff = mysqlTimeText(Date.now() - 30 * 86_400_000, false);
    for (const [k, row] of state) if (String(row.created_at) < cutoff) state.delete(k);
  }
  return comparableState(state, KEYS[table]!, JSON_COLUMNS[table]);
}

/** How the hot replica of a table differs from the source inside its window (keys), and both sizes. */
export async function replicaDiff(
  t: TierFixture,
  table: string,
): Promise<{
  missing: string[];
  extra: string[];
  different: string[];
  replicaRows: number;
  sourceRows: number;
}> {
  const replica = await replicaContents(
    localUri(t),
    t.mongoDatabase,
    `${t.fx.db}.${table}`,
    KEYS[table]!,
    JSON_COLUMNS[table],
  );
  const expected = await expectedReplica(t, table);
  return { ...diffStates(replica.rows, expected), replicaRows: replica.rows.size, sourceRows: expected.size };
}

export async function replicaMatchesSource(t: TierFixture, table: string): Promise<true | undefined> {
  const { replicaRows, sourceRows, ...diff } = await replicaDiff(t, table);
  if (diff.missing.length + diff.extra.length + diff.different.length === 0) return true;
  throw new Error(`replica has ${replicaRows} rows, source ${sourceRows}: ${JSON.stringify(diff)}`);
}

export function localUri(t: TierFixture): string {
  return (t.tierRaw.tier as { hot: { uri: string } }).hot.uri;
}

/** Every change event of the tables as Kafka holds it, deduplicated by position. */
export async function kafkaEvents(t: TierFixture, tables: string[]) {
  const kafka = createKafka(t.fx.config.kafka!, logger, '-verify');
  const catalog = new SchemaCatalog(kafka, t.fx.prefix, logger);
  const collector = new ChangeCollector(kafka, catalog);
  try {
    await collector.start(tables.map((table) => changeTopic(t.fx.prefix, t.fx.db, table)));
    let seen = -1;
    // Settled: nothing new for two seconds.
    for (;;) {
      await sleep(2000);
      if (collector.events.length === seen) break;
      seen = collector.events.length;
    }
    return collector.events;
  } finally {
    await collector.stop();
    await catalog.close();
  }
}

export async function archiveMatchesKafka(t: TierFixture, table: string, expectedEvents: number) {
  const archive = await archiveContents(t.store, t.archivePrefix, t.fx.db, table);
  const ledger = dedupeByPosition(archive.events);
  return ledger.unique.length >= expectedEvents ? { archive, ledger } : undefined;
}

export async function metric(proc: CaptureProcess, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${proc.port}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

/** The archive of each table holds every change Kafka holds, once, tiling each partition, and replays to the source. */
export async function expectArchiveComplete(t: TierFixture, tables: string[]): Promise<void> {
  const inKafka = await kafkaEvents(t, tables);
  for (const table of tables) {
    const expected = dedupeByPosition(
      inKafka.filter((c) => c.event.source.table === table).map((c) => c.event),
    ).unique;
    const { archive, ledger } = await eventually(`archive of ${table}`, () =>
      archiveMatchesKafka(t, table, expected.length),
    );
    expect(archive.breaks).toEqual([]);
    expect(archive.mismatches).toEqual([]);
    expect(ledger.duplicates).toBe(0);
    expect(ledger.conflicts).toEqual([]);
    expect(ledger.unique.length).toBe(expected.length);
    const keyOf = (row: Row) => encodeKey(KEYS[table]!.map((c) => row[c] ?? null));
    const diff = sameState(
      replayState(ledger.unique, keyOf),
      await sourceState(t.fx.config.source!, t.fx.db, table),
    );
    expect(diff).toEqual({ missing: [], extra: [], different: [] });
  }
}

export async function health(
  proc: CaptureProcess,
): Promise<{ healthy: boolean; details: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${proc.port}/healthz`);
  return (await res.json()) as { healthy: boolean; details: Record<string, unknown> };
}
