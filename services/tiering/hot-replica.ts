// The hot replica sink: the recent rows of each table in MongoDB, one collection per table. Every write
// carries the event's position and applies only over an older one, deletes leave a tombstone, so replaying
// any range of events again changes nothing and the replica converges on the source.

import {
  MongoBulkWriteError,
  MongoClient,
  type AnyBulkWriteOperation,
  type Db,
  type Document,
  type WriteError,
} from 'mongodb';
import {
  documentId,
  formatPosition,
  HEADER_SCHEMA,
  rowToBson,
  TidemarkError,
  type BsonMappingOptions,
  type ChangeEvent,
  type HotConfig,
  type Logger,
  type SchemaCatalog,
  type TableCodec,
  serverBsonMapping,
} from '../core/index.js';
import { unreadable, type PartitionBatch, type PartitionContext, type TierSink } from './consumer.js';
import type { TierMetrics } from './metrics.js';

/** Where tidemark keeps its own fields in every document. */
export const META = '_tidemark';

export interface RowMeta {
  /** Position of the last change applied (sortable text). */
  pos: string;
  /** Source time of that change. */
  ts: Date;
  op: 'c' | 'u' | 'd' | 'r';
  tx: string | null;
  /** Set on tombstones: the row was deleted at `pos`; `at` is when the tombstone was written. */
  deleted?: true;
  at?: Date;
}

interface Write {
  id: string;
  /** An insert or snapshot read: most likely a row the replica does not hold yet. */
  fresh: boolean;
  /** Stable identity of the _id for collapsing writes to one per row. */
  idKey: string;
  pos: string;
  doc: Document;
}

const DUPLICATE_KEY = 11000;
/**
 * FerretDB 1.x holds a database connection per matched document until an update command ends and
 * deadlocks at 100; MongoDB does not mind either way.
 */
const REPLACES_PER_COMMAND = 50;
const LOOKUP_CONCURRENCY = 16;

export interface HotReplicaOptions {
  config: HotConfig;
  catalog: SchemaCatalog;
  logger: Logger;
  metrics: TierMetrics;
  /** Test hook: the clock eviction and windows use. */
  now?: () => number;
}

/** `2026-03-01 10:03:12` for a time, in the form DATETIME/TIMESTAMP text takes, so strings compare as times. */
export function mysqlTimeText(ms: number, dateOnly: boolean): string {
  const iso = new Date(ms).toISOString();
  return dateOnly ? iso.slice(0, 10) : `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
}

export class HotReplica implements TierSink {
  private client: MongoClient | undefined;
  private db: Db | undefined;
  private readonly prepared = new Set<string>();
  private readonly mapping: BsonMappingOptions = { decimal128: false, nestedArrays: true };
  /** FerretDB 1.x: ids looked up one by one, updates in small commands, no compound filters. */
  private ferret = false;
  private lastEviction = 0;
  private readonly now: () => number;

  constructor(private readonly o: HotReplicaOptions) {
    this.now = o.now ?? Date.now;
  }

  private connecting: Promise<void> | undefined;

  /** Connects and learns what the server supports; a server that is down is retried by the caller. */
  connect(): Promise<void> {
    this.connecting ??= this.open().catch((err: unknown) => {
      this.connecting = undefined;
      throw err;
    });
    return this.connecting;
  }

  private async open(): Promise<void> {
    const client = new MongoClient(this.o.config.uri, {
      serverSelectionTimeoutMS: 5_000,
      appName: 'tidemark-tier',
    });
    try {
      await client.connect();
      const { ferret, ...mapping } = await serverBsonMapping(client);
      this.ferret = ferret;
      Object.assign(this.mapping, mapping);
    } catch (err) {
      await client.close().catch(() => undefined);
      throw unavailable(this.o.config.uri, err);
    }
    this.client = client;
    this.db = client.db(this.o.config.database);
  }

  async close(): Promise<void> {
    await this.connecting?.catch(() => undefined);
    await this.client?.close().catch(() => undefined);
    this.client = undefined;
    this.db = undefined;
    this.connecting = undefined;
  }

  async apply(batch: PartitionBatch, ctx: PartitionContext): Promise<void> {
    const events: { event: ChangeEvent; codec: TableCodec }[] = [];
    for (const message of batch.messages) {
      const version = message.headers?.[HEADER_SCHEMA]?.toString();
      if (!version || !message.value) {
        throw unreadable(
          batch.topic,
          batch.partition,
          message.offset,
          `it has no value or no ${HEADER_SCHEMA} header`,
        );
      }
      let codec: TableCodec;
      try {
        codec = this.o.catalog.get(version) ?? (await this.o.catalog.codecFor(version, 30_000));
      } catch (err) {
        throw unreadable(
          batch.topic,
          batch.partition,
          message.offset,
          `its schema version ${version} is unknown`,
          err,
        );
      }
      try {
        events.push({ event: codec.decode(message.value), codec });
      } catch (err) {
        throw unreadable(
          batch.topic,
          batch.partition,
          message.offset,
          `its bytes do not decode as schema ${version}: ${(err as Error).message}`,
          err,
        );
      }
    }
    if (events.length > 0) {
      await this.connect();
      const started = process.hrtime.bigint();
      await this.write(events);
      this.o.metrics.writeSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    }
    const last = batch.messages[batch.messages.length - 1];
    if (last) await ctx.commit(BigInt(last.offset) + 1n);
  }

  /** Rows past their window and expired tombstones go, once every evictEverySeconds. */
  async tick(): Promise<void> {
    if (!this.db || this.now() - this.lastEviction < this.o.config.evictEverySeconds * 1000) return;
    this.lastEviction = this.now();
    await this.evict();
  }

  async evict(): Promise<void> {
    await this.connect();
    const db = this.db as Db;
    for (const name of this.prepared) {
      const collection = db.collection(name);
      const window = this.o.config.tables[name]?.window;
      if (window) {
        const cutoff = this.windowCutoff(name);
        const { deletedCount } = await collection.deleteMany({ [window.column]: { $lt: cutoff } });
        if (deletedCount > 0) this.o.metrics.evicted.inc({ table: name, kind: 'row' }, deletedCount);
      }
      const expired = new Date(this.now() - this.o.config.tombstoneHours * 3_600_000);
      const { deletedCount } = await collection.deleteMany({
        [`${META}.deleted`]: true,
        [`${META}.at`]: { $lt: expired },
      });
      if (deletedCount > 0) this.o.metrics.evicted.inc({ table: name, kind: 'tombstone' }, deletedCount);
    }
  }

  private windowCutoff(table: string): string {
    const window = this.o.config.tables[table]?.window;
    if (!window) return '';
    return mysqlTimeText(this.now() - window.days * 86_400_000, false);
  }

  /** Indexes of the table's config, created once per process (creating an existing index is a no-op). */
  private async prepare(table: string, codec: TableCodec): Promise<void> {
    if (this.prepared.has(table)) return;
    const settings = this.o.config.tables[table];
    const collection = (this.db as Db).collection(table);
    const columns = new Set(codec.table.columns.map((c) => c.name));
    for (const name of [META, '_id']) {
      if (columns.has(name)) {
        throw new TidemarkError(
          'CONFIG_INVALID',
          `${table} has a column named ${name}, which the hot replica uses itself`,
          {
            hint: `exclude the column in source.columns["${table}"].exclude, or leave ${table} out of tier.tables`,
          },
        );
      }
    }
    const indexes = [...(settings?.indexes ?? []), ...(settings?.window ? [[settings.window.column]] : [])];
    for (const index of indexes) {
      const missing = index.filter((c) => !columns.has(c));
      if (missing.length > 0) {
        throw new TidemarkError(
          'CONFIG_INVALID',
          `tier.hot.tables["${table}"] names unknown columns ${missing.join(', ')}`,
          {
            hint: `${table} has: ${[...columns].join(', ')}`,
          },
        );
      }
      await collection.createIndex(Object.fromEntries(index.map((c) => [c, 1])));
    }
    this.prepared.add(table);
  }

  private async write(events: { event: ChangeEvent; codec: TableCodec }[]): Promise<void> {
    // One write per row: the change with the highest position wins, and a batch is one round of bulk writes.
    const byTable = new Map<string, Map<string, Write>>();
    const applied = new Map<string, number>();
    const cutoffs = new Map<string, string>();
    const count = (table: string, op: string) => {
      const labels = `${table}\u0000${op}`;
      applied.set(labels, (applied.get(labels) ?? 0) + 1);
    };
    const keep = (table: string, w: Write) => {
      let writes = byTable.get(table);
      if (!writes) byTable.set(table, (writes = new Map<string, Write>()));
      const current = writes.get(w.idKey);
      if (!current || current.pos < w.pos) writes.set(w.idKey, w);
    };
    for (const { event, codec } of events) {
      const table = `${event.source.db}.${event.source.table}`;
      if (!this.prepared.has(table)) await this.prepare(table, codec);
      const pos = formatPosition(event.pos);
      const meta: RowMeta = { pos, ts: new Date(event.tsMs), op: event.op, tx: event.tx };
      const { columns } = codec.table;
      const tombstone = (row: NonNullable<ChangeEvent['before']>): Write => {
        const id = documentId(codec.keyColumns, row);
        return {
          id,
          idKey: id,
          fresh: false,
          pos,
          doc: { _id: id, [META]: { ...meta, op: 'd', deleted: true, at: new Date(this.now()) } },
        };
      };
      const after = event.after;
      if (event.op === 'd' || !after) {
        if (event.before) keep(table, tombstone(event.before));
        count(table, event.op);
        continue;
      }
      const id = documentId(codec.keyColumns, after);
      const idKey = id;
      // An update that changed the primary key deletes the row under its old key.
      if (event.before && event.op === 'u') {
        const old = tombstone(event.before);
        if (old.idKey !== idKey) keep(table, old);
      }
      if (this.outsideWindow(table, after, cutoffs)) {
        // Too old for the replica: a new row is not written; a row updated out of the window goes.
        if (event.op === 'u') keep(table, { ...tombstone(after), id, idKey });
      } else
        keep(table, {
          id,
          idKey,
          fresh: event.op === 'c' || event.op === 'r',
          pos,
          doc: { _id: id, ...rowToBson(columns, after, this.mapping), [META]: meta },
        });
      count(table, event.op);
    }
    for (const [table, writes] of byTable) await this.writeTable(table, [...writes.values()]);
    // Counted once written, so a retried batch is not counted twice.
    for (const [labels, count] of applied) {
      const [table = '', op = ''] = labels.split('\u0000');
      this.o.metrics.rowsApplied.inc({ table, op }, count);
    }
  }

  private outsideWindow(
    table: string,
    row: NonNullable<ChangeEvent['after']>,
    cutoffs: Map<string, string>,
  ): boolean {
    const window = this.o.config.tables[table]?.window;
    if (!window) return false;
    const value = row[window.column];
    if (typeof value !== 'string') return false;
    // One cutoff per batch, not a clock reading and a date format per row.
    let cutoff = cutoffs.get(table);
    if (cutoff === undefined) cutoffs.set(table, (cutoff = this.windowCutoff(table)));
    return value < cutoff;
  }

  /**
   * Rows new to the source (inserts, snapshot reads) go in with one unordered insertMany. Every other write,
   * and an insert whose row is already there, first has its stored position looked up in one query; writes
   * not newer than what is stored are dropped as stale, the rest are replaces that match only where the
   * stored position is still older. Replaces are sent ordered: FerretDB 1.x stops an unordered update batch
   * at its first error without applying or reporting the rest, so after a conflict (a concurrent writer)
   * the remainder is sent again.
   */
  private async writeTable(table: string, writes: Write[]): Promise<void> {
    const collection = (this.db as Db).collection(table);
    const inserts = writes.filter((w) => w.fresh);
    const others = writes.filter((w) => !w.fresh);
    if (inserts.length > 0) others.push(...(await this.insert(collection, inserts)));
    if (others.length === 0) return;
    const stored = await this.storedPositions(collection, others);
    const newer = others.filter((w) => {
      const current = stored.get(w.idKey);
      return current === undefined || current < w.pos;
    });
    const stale = others.length - newer.length + (await this.replace(collection, newer));
    if (stale > 0) this.o.metrics.staleSkipped.inc({ table }, stale);
  }

  /**
   * Inserts; rows already there come back to be compared by position. MongoDB reports every conflict of an
   * unordered insert. FerretDB 1.x stops an unordered insert at its first duplicate key without inserting or
   * reporting the rest (a retried batch, half of it written before the server stopped, would lose its other
   * half), so there the inserts go ordered: everything before the conflict is in, the rest is sent again.
   */
  private async insert(collection: ReturnType<Db['collection']>, writes: Write[]): Promise<Write[]> {
    if (!this.ferret) {
      try {
        await collection.insertMany(
          writes.map((w) => w.doc),
          { ordered: false },
        );
        return [];
      } catch (err) {
        return this.conflicts(err, writes, collection.collectionName);
      }
    }
    const conflicts: Write[] = [];
    let rest = writes;
    let looked = false;
    while (rest.length > 0) {
      try {
        await collection.insertMany(
          rest.map((w) => w.doc),
          { ordered: true },
        );
        break;
      } catch (err) {
        const [conflict] = this.conflicts(err, rest, collection.collectionName);
        if (!conflict) throw unavailable(this.o.config.uri, err, collection.collectionName);
        conflicts.push(conflict);
        rest = rest.slice(rest.indexOf(conflict) + 1);
        // A retried batch: the rows already there are found in one lookup rather than one conflict each.
        if (!looked && rest.length > 0) {
          looked = true;
          const stored = await this.storedPositions(collection, rest);
          conflicts.push(...rest.filter((w) => stored.has(w.idKey)));
          rest = rest.filter((w) => !stored.has(w.idKey));
        }
      }
    }
    return conflicts;
  }

  /** Stored positions of the rows, by _id: one $in query, or (FerretDB) one direct lookup per row. */
  private async storedPositions(
    collection: ReturnType<Db['collection']>,
    writes: Write[],
  ): Promise<Map<string, string>> {
    const stored = new Map<string, string>();
    const projection = { [`${META}.pos`]: 1 };
    const note = (doc: Document | null) => {
      if (doc) stored.set(String(doc._id), (doc[META] as RowMeta | undefined)?.pos ?? '');
    };
    if (!this.ferret) {
      for await (const doc of collection.find({ _id: { $in: writes.map((w) => w.id) } } as Document, {
        projection,
      })) {
        note(doc);
      }
      return stored;
    }
    for (let i = 0; i < writes.length; i += LOOKUP_CONCURRENCY) {
      const docs = await Promise.all(
        writes
          .slice(i, i + LOOKUP_CONCURRENCY)
          .map((w) => collection.findOne({ _id: w.id } as Document, { projection })),
      );
      docs.forEach(note);
    }
    return stored;
  }

  /**
   * Replaces, in order and in small commands; resolves to how many met a newer row. On MongoDB the filter
   * also requires the stored position to be older, so a concurrent writer's newer row is never overwritten;
   * FerretDB 1.x scans the whole collection for any filter but a bare _id, so there the position check is the
   * lookup just before (one writer owns a partition's keys).
   */
  private async replace(collection: ReturnType<Db['collection']>, writes: Write[]): Promise<number> {
    let stale = 0;
    let rest = writes;
    while (rest.length > 0) {
      const chunk = rest.slice(0, REPLACES_PER_COMMAND);
      const ops = chunk.map((w): AnyBulkWriteOperation => {
        const filter: Document = this.ferret ? { _id: w.id } : { _id: w.id, [`${META}.pos`]: { $lt: w.pos } };
        return { replaceOne: { filter, replacement: w.doc, upsert: true } };
      });
      try {
        await collection.bulkWrite(ops, { ordered: true });
        rest = rest.slice(chunk.length);
      } catch (err) {
        // A duplicate key means the stored row is newer: the filter missed and the upsert collided.
        const [conflict] = this.conflicts(err, chunk, collection.collectionName);
        if (!conflict) throw unavailable(this.o.config.uri, err, collection.collectionName);
        stale++;
        rest = rest.slice(rest.indexOf(conflict) + 1);
      }
    }
    return stale;
  }

  private conflicts(err: unknown, writes: Write[], table: string): Write[] {
    if (!(err instanceof MongoBulkWriteError)) throw unavailable(this.o.config.uri, err, table);
    const errors: unknown = err.writeErrors;
    const failed = (Array.isArray(errors) ? errors : [errors]) as WriteError[];
    const other = failed.find((e) => e.code !== DUPLICATE_KEY);
    if (other) {
      throw new TidemarkError(
        'REPLICA_UNAVAILABLE',
        `writing ${table} failed: ${other.errmsg ?? other.code}`,
        {
          cause: err,
        },
      );
    }
    return failed.map((e) => writes[e.index] as Write);
  }
}

function unavailable(uri: string, err: unknown, table?: string): TidemarkError {
  if (err instanceof TidemarkError) return err;
  const where = uri.replace(/\/\/[^@/]*@/, '//');
  return new TidemarkError(
    'REPLICA_UNAVAILABLE',
    `${table ? `writing ${table} to ` : ''}the hot replica at ${where} failed: ${(err as Error).message}`,
    {
      cause: err,
      hint: 'tier keeps the events in Kafka and retries; check that MongoDB is up and tier.hot.uri',
    },
  );
}
