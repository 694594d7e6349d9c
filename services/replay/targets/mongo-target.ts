// Restore into MongoDB (or FerretDB): one collection per table named `<db>.<table>`, documents shaped like
// the hot replica's (same _id, same exact types, `_tidemark` with the position of the row's last change),
// so a restored database can stand in for the replica or be compared with it.

import { MongoClient, type Db } from 'mongodb';
import {
  documentId,
  formatPosition,
  rowToBson,
  TidemarkError,
  type BsonMappingOptions,
  type TableCodec,
  serverBsonMapping,
} from '../../core/index.js';
import { META } from '../../tiering/hot-replica.js';
import {
  asideName,
  tableWritten,
  type RestoreSummaryRecord,
  type RestoreTarget,
  type TableSink,
} from './target.js';

export class MongoTarget implements RestoreTarget {
  readonly description: string;
  private client: MongoClient | undefined;
  private db: Db | undefined;
  private readonly mapping: BsonMappingOptions = { decimal128: true, nestedArrays: true };

  constructor(
    private readonly uri: string,
    private readonly database: string,
    private readonly startedMs: number,
  ) {
    // Host and database only: never the credentials.
    let host = uri;
    try {
      host = new URL(uri).host;
    } catch {
      host = uri.replace(/^mongodb(\+srv)?:\/\/([^@/]*@)?/, '').split('/')[0] ?? uri;
    }
    this.description = `mongodb://${host}/${database}`;
  }

  private async connect(): Promise<Db> {
    if (this.db) return this.db;
    const client = new MongoClient(this.uri, {
      serverSelectionTimeoutMS: 5_000,
      appName: 'tidemark-restore',
    });
    try {
      await client.connect();
      const { decimal128, nestedArrays } = await serverBsonMapping(client);
      Object.assign(this.mapping, { decimal128, nestedArrays });
    } catch (err) {
      await client.close().catch(() => undefined);
      throw new TidemarkError(
        'TARGET_UNAVAILABLE',
        `cannot reach MongoDB at ${this.description}: ${(err as Error).message}`,
        {
          cause: err,
          hint: 'check the --to URI and that the server is up',
        },
      );
    }
    this.client = client;
    this.db = client.db(this.database);
    return this.db;
  }

  async check(tables: readonly string[], force: boolean): Promise<void> {
    const db = await this.connect();
    if (force) return;
    const present: string[] = [];
    for (const t of tables) {
      if ((await db.collection(t).findOne({}, { projection: { _id: 1 } })) !== null) present.push(t);
    }
    if (present.length > 0) {
      throw new TidemarkError(
        'TARGET_NOT_EMPTY',
        `${this.description} already holds documents in ${present.join(', ')}`,
        {
          hint: 'restore into a new database (the default names one after the restore time), or pass --force to replace those collections (the old ones are kept aside)',
        },
      );
    }
  }

  async openTable(table: string, codec: TableCodec, force: boolean): Promise<TableSink> {
    const db = await this.connect();
    const collection = db.collection(table);
    let keptAside: string | undefined;
    if (force && (await collection.findOne({}, { projection: { _id: 1 } })) !== null) {
      keptAside = asideName(table, this.startedMs);
      await collection.rename(keptAside);
    }
    const columns = codec.table.columns;
    let rows = 0;
    return {
      write: async (batch) => {
        const docs = batch.map(({ row, slot }) => ({
          _id: documentId(codec.keyColumns, row),
          ...rowToBson(columns, row, this.mapping),
          [META]: { pos: formatPosition(slot.pos), ts: new Date(slot.tsMs), op: slot.op, tx: slot.tx },
        }));
        try {
          await collection.insertMany(docs as never[], { ordered: false });
        } catch (err) {
          throw new TidemarkError(
            'TARGET_UNAVAILABLE',
            `writing ${this.description}.${table} failed: ${(err as Error).message}`,
            {
              cause: err,
            },
          );
        }
        rows += batch.length;
      },
      end: () => Promise.resolve(tableWritten(this.description, table, rows, keptAside)),
    };
  }

  async finish(summary: RestoreSummaryRecord): Promise<void> {
    const db = await this.connect();
    await db
      .collection('_tidemark_restore')
      .replaceOne({ _id: 'restore' as never }, summary, { upsert: true });
  }

  async close(): Promise<void> {
    await this.client?.close().catch(() => undefined);
    this.client = undefined;
    this.db = undefined;
  }
}
