// The cold archive sink: every change event, per Kafka partition, into Avro container files plus one
// manifest entry each, in an object store. Per partition the files tile the offsets with no gap and no
// overlap after any crash: before a file is uploaded its end is recorded with the group's committed offset
// (offset = the file's start, metadata = where it ends), so whoever reads the partition next cuts the very
// same file, and only after the upload does the committed offset move past it.

import { readFileSync } from 'node:fs';
import type { KafkaMessage } from 'kafkajs';
import {
  avro,
  avroType,
  typeOptions,
  changeFileKey,
  encodeManifestEntry,
  comparePositions,
  formatPosition,
  HEADER_SCHEMA,
  manifestKey,
  parseMasterKey,
  sealObject,
  TidemarkError,
  writeAvroContainer,
  type AvroSchema,
  type AvroType,
  type ColdConfig,
  type ColumnRange,
  type Keyring,
  type Logger,
  type ManifestEntry,
  type ObjectStore,
  type Position,
  type RowValue,
  type SchemaCatalog,
  type TableCodec,
} from '../core/index.js';
import { unreadable, type PartitionBatch, type PartitionContext, type TierSink } from './consumer.js';
import type { TierMetrics } from './metrics.js';

const CUT_METADATA = 'tidemark-cut:';
const HOUR_MS = 3_600_000;

/** The committed-offset metadata that records where the file starting at the committed offset ends. */
export function cutMetadata(lastOffset: bigint | number): string {
  return `${CUT_METADATA}${lastOffset}`;
}

export function parseCutMetadata(metadata: string | null): bigint | undefined {
  return metadata?.startsWith(CUT_METADATA) ? BigInt(metadata.slice(CUT_METADATA.length)) : undefined;
}

export function keyringFromConfig(encryption: ColdConfig['encryption']): Keyring | undefined {
  if (!encryption) return undefined;
  const all = Object.entries(encryption.keys).map(([id, given]) => {
    const field = `tier.cold.encryption.keys.${id}`;
    if (typeof given === 'string') return parseMasterKey(id, given, field);
    let text: string;
    try {
      text = readFileSync(given.file, 'utf8');
    } catch (err) {
      throw new TidemarkError(
        'CONFIG_INVALID',
        `${field}: cannot read ${given.file}: ${(err as Error).message}`,
        {
          cause: err,
          hint: 'mount the key file, or give the key inline (64 hex characters)',
        },
      );
    }
    return parseMasterKey(id, text, field);
  });
  const current = all.find((k) => k.id === encryption.keyId);
  return current ? { current, all } : undefined;
}

/** Only what the archive needs of each event: times, positions and the columns with min/max. */
interface Projected {
  /** Absent when the table has no columns with statistics. */
  before?: Record<string, RowValue> | null;
  after?: Record<string, RowValue> | null;
  /** Plain numbers, or bigints when a statistics column needs bigint longs. */
  ts_ms: bigint | number;
  pos: { file: bigint | number; offset: bigint | number; row: bigint | number; gtid: string | null };
}

interface Projection {
  codec: TableCodec;
  reader: AvroType;
  resolver: unknown;
  /** Avro field name → column name of the columns with statistics. */
  statFields: [string, string][];
}

// Offsets are numbers inside the archive (exact up to 2^53, which no partition reaches: offsetOf checks),
// bigints where they leave it (committed offsets, keys, manifest entries).
interface OpenFile {
  projection: Projection;
  start: number;
  lastOffset: number;
  records: Buffer[];
  bytes: number;
  hour: number;
  minTs: number;
  maxTs: number;
  firstPos: Position;
  lastPos: Position;
  /** Every position so far above the one before it (lastPos is the highest so far). */
  ascending: boolean;
  stats: Map<string, { min: RowValue; max: RowValue }>;
  openedAt: number;
}

interface PartitionState {
  generation: number;
  /** First offset of the next file: the offset after the previous one. */
  next: number;
  /** Offsets up to here are in the open file or archived; a retried batch skips them. */
  seen: number;
  /** Where the first file must end, as recorded before a crash. */
  forcedEnd: number | undefined;
  file: OpenFile | undefined;
  /**
   * The file cut last, on its way to the store while the next one fills. The next cut waits for it (its
   * commit moves the offset past it, which the next file's recorded end must not overtake).
   */
  upload: Upload | undefined;
}

interface Upload {
  file: OpenFile;
  topic: string;
  partition: number;
  ctx: PartitionContext;
  done: Promise<void>;
  /** Set when the attempt failed; the next cut, the periodic tick or idle() tries again. */
  failure?: Error;
}

export interface ColdArchiveOptions {
  store: ObjectStore;
  config: ColdConfig;
  keyring: Keyring | undefined;
  catalog: SchemaCatalog;
  logger: Logger;
  metrics: TierMetrics;
  /** Open files of all partitions together are cut when they hold more than this. */
  maxOpenBytes?: number;
}

function compareValues(a: RowValue, b: RowValue): number {
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return Buffer.compare(a, b);
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  if ((typeof a === 'number' || typeof a === 'bigint') && (typeof b === 'number' || typeof b === 'bigint')) {
    return a < b ? -1 : a > b ? 1 : 0;
  }
  return 0;
}

/** An offset as a number, exact: one beyond 2^53 is refused rather than rounded. */
function offsetOf(offset: bigint | string, topic: string, partition: number): number {
  const n = Number(offset);
  if (n > Number.MAX_SAFE_INTEGER) {
    throw new TidemarkError(
      'OFFSET_UNSUPPORTED',
      `${topic}[${partition}] is at offset ${offset}, beyond 2^53, which the cold archive cannot count exactly`,
      { hint: 'archive this partition from a new topic (offsets start again at 0)' },
    );
  }
  return n;
}

function valueText(v: RowValue): string | null {
  if (v === null) return null;
  return Buffer.isBuffer(v) ? `0x${v.toString('hex')}` : String(v);
}

export class ColdArchive implements TierSink {
  private readonly partitions = new Map<string, PartitionState>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly projections = new Map<string, Projection>();
  /** The schema header of the last event whose projection was known, and that projection. */
  private lastHeader: { bytes: Buffer; projection: Projection } | undefined;
  private openBytes = 0;
  private readonly maxOpenBytes: number;

  constructor(private readonly o: ColdArchiveOptions) {
    this.maxOpenBytes = o.maxOpenBytes ?? 256 * 1024 * 1024;
  }

  apply(batch: PartitionBatch, ctx: PartitionContext): Promise<void> {
    return this.locked(`${batch.topic}[${batch.partition}]`, () => this.applyLocked(batch, ctx));
  }

  async tick(ctxFor: (topic: string, partition: number) => PartitionContext | undefined): Promise<void> {
    const now = Date.now();
    for (const [id, state] of this.partitions) {
      // A failed upload is tried again even when no event comes to cut the next file.
      if (state.upload?.failure !== undefined) {
        await this.locked(id, () => this.settle(state));
      }
      const file = state.file;
      if (!file || now - file.openedAt < this.o.config.flushAfterSeconds * 1000) continue;
      const [, topic = '', partition = ''] = /^(.*)\[(\d+)\]$/.exec(id) ?? [];
      const ctx = ctxFor(topic, Number(partition));
      if (!ctx || ctx.generation !== state.generation) continue;
      await this.locked(id, async () => {
        if (state.file === file) await this.cut(topic, Number(partition), state, ctx);
      });
    }
  }

  async close(): Promise<void> {
    // Uploads in flight finish (or fail: their events stay uncommitted); open files are dropped, their
    // events are still uncommitted in Kafka and are read again.
    await Promise.all([...this.partitions.values()].map((p) => p.upload?.done ?? Promise.resolve()));
    this.partitions.clear();
    this.openBytes = 0;
  }

  /** Waits until every file cut so far is in the store and committed; throws the first failure. */
  async idle(): Promise<void> {
    for (const [id, state] of this.partitions) await this.locked(id, () => this.settle(state));
  }

  private async locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(id) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    this.locks.set(
      id,
      run.catch(() => undefined),
    );
    return run;
  }

  private async stateFor(topic: string, partition: number, ctx: PartitionContext): Promise<PartitionState> {
    const id = `${topic}[${partition}]`;
    const known = this.partitions.get(id);
    if (known && known.generation === ctx.generation) return known;
    if (known?.file) this.openBytes -= known.file.bytes;
    const committed = await ctx.committed();
    const start = offsetOf(
      committed.offset >= 0n ? committed.offset : await ctx.lowWatermark(),
      topic,
      partition,
    );
    const cutAt = parseCutMetadata(committed.metadata);
    const state: PartitionState = {
      generation: ctx.generation,
      next: start,
      seen: start - 1,
      forcedEnd: cutAt === undefined ? undefined : offsetOf(cutAt, topic, partition),
      file: undefined,
      upload: undefined,
    };
    this.partitions.set(id, state);
    this.o.logger.info(
      { partition: id, from: start.toString(), cutAt: state.forcedEnd?.toString() },
      'archiving partition',
    );
    return state;
  }

  private async applyLocked(batch: PartitionBatch, ctx: PartitionContext): Promise<void> {
    const { topic, partition } = batch;
    const state = await this.stateFor(topic, partition, ctx);
    const rotate = this.o.config.rotate;
    for (const message of batch.messages) {
      const offset = offsetOf(message.offset, topic, partition);
      if (offset <= state.seen) continue;
      // Known schema versions without a promise per event, and without decoding the header while it
      // repeats the previous event's bytes (kafkajs gives a repeated header value as the same Buffer).
      const header = message.headers?.[HEADER_SCHEMA];
      const last = this.lastHeader;
      let projection: Projection | undefined;
      if (
        last !== undefined &&
        (header === last.bytes || (Buffer.isBuffer(header) && header.equals(last.bytes)))
      ) {
        projection = last.projection;
      } else {
        projection = this.projections.get(header?.toString() ?? '');
        // kafkajs keeps values up to 256 bytes as copies of their own; a longer one is a view of the fetch.
        if (projection && Buffer.isBuffer(header))
          this.lastHeader = { bytes: header.length > 256 ? Buffer.from(header) : header, projection };
      }
      projection ??= await this.projectionFor(topic, partition, message);
      const event = this.decode(projection, topic, partition, message);
      const value = message.value as Buffer;
      const ts = Number(event.ts_ms);
      const file = state.file;
      if (file) {
        const forced = state.forcedEnd;
        const mustCut =
          forced !== undefined
            ? offset > forced
            : file.projection !== projection ||
              Math.floor(ts / HOUR_MS) !== file.hour ||
              Math.max(file.maxTs, ts) - Math.min(file.minTs, ts) > rotate.maxSpanSeconds * 1000 ||
              file.bytes + value.length > rotate.maxBytes ||
              this.openBytes > this.maxOpenBytes;
        if (mustCut) await this.cut(topic, partition, state, ctx);
      }
      this.add(state, projection, event, value, offset, ts);
      state.seen = offset;
      if (this.full(state)) await this.cut(topic, partition, state, ctx);
    }
    // A retried batch may have added everything before its cut failed.
    if (this.full(state)) await this.cut(topic, partition, state, ctx);
  }

  /** Whether the open file must be closed now that its last record is in. */
  private full(state: PartitionState): boolean {
    const file = state.file;
    if (!file) return false;
    if (state.forcedEnd !== undefined) return file.lastOffset >= state.forcedEnd;
    const { maxEvents, maxBytes } = this.o.config.rotate;
    return file.records.length >= maxEvents || file.bytes >= maxBytes;
  }

  private add(
    state: PartitionState,
    projection: Projection,
    event: Projected,
    value: Buffer,
    offset: number,
    ts: number,
  ): void {
    const p = event.pos;
    // Numbers already unless a statistics column made the reader's longs bigints.
    const pos: Position =
      typeof p.file === 'number' && typeof p.offset === 'number' && typeof p.row === 'number'
        ? (p as Position)
        : { file: Number(p.file), offset: Number(p.offset), row: Number(p.row) };
    let file = state.file;
    if (!file) {
      file = {
        projection,
        start: state.next,
        lastOffset: offset,
        records: [],
        bytes: 0,
        hour: Math.floor(ts / HOUR_MS),
        minTs: ts,
        maxTs: ts,
        firstPos: pos,
        lastPos: pos,
        ascending: true,
        stats: new Map(),
        openedAt: Date.now(),
      };
      state.file = file;
    } else if (comparePositions(pos, file.lastPos) <= 0) {
      file.ascending = false;
    }
    file.records.push(value);
    file.bytes += value.length;
    this.openBytes += value.length;
    file.lastOffset = offset;
    if (ts < file.minTs) file.minTs = ts;
    if (ts > file.maxTs) file.maxTs = ts;
    if (comparePositions(pos, file.firstPos) < 0) file.firstPos = pos;
    if (comparePositions(pos, file.lastPos) > 0) file.lastPos = pos;
    for (const [field, column] of projection.statFields) {
      for (const image of [event.before, event.after]) {
        const v = image?.[field] ?? null;
        if (v === null) continue;
        const range = file.stats.get(column);
        if (!range) file.stats.set(column, { min: v, max: v });
        else {
          if (compareValues(v, range.min) < 0) range.min = v;
          if (compareValues(v, range.max) > 0) range.max = v;
        }
      }
    }
  }

  /**
   * Closes the open file: its end is recorded with the group's committed offset (offset = its start,
   * metadata = its last offset), then it goes to the store in the background while the next file fills.
   */
  private async cut(
    topic: string,
    partition: number,
    state: PartitionState,
    ctx: PartitionContext,
  ): Promise<void> {
    const file = state.file;
    if (!file) return;
    // The file before must be stored and committed first: recording this one's end moves the committed
    // offset to this file's start, past the file before.
    await this.settle(state);
    const last = file.lastOffset;
    if (state.forcedEnd !== last) await ctx.commit(BigInt(file.start), cutMetadata(last));
    state.next = last + 1;
    state.forcedEnd = undefined;
    state.file = undefined;
    // Counted among the open files no more: at most one file per partition uploads at a time.
    this.openBytes -= file.bytes;
    const upload: Upload = { file, topic, partition, ctx, done: Promise.resolve() };
    state.upload = upload;
    this.startUpload(upload);
  }

  /** Waits for the upload in flight; one that failed is tried again here, and throws if it fails again. */
  private async settle(state: PartitionState): Promise<void> {
    const upload = state.upload;
    if (!upload) return;
    await upload.done;
    if (upload.failure !== undefined) {
      if (upload.ctx.isStale()) {
        // The partition moved on: whoever reads it next cuts this file again from the recorded end.
        state.upload = undefined;
        throw upload.failure;
      }
      upload.failure = undefined;
      const failure = await this.attempt(upload);
      if (failure !== undefined) throw failure;
    }
    if (state.upload === upload) state.upload = undefined;
  }

  /** Uploads again; resolves to the failure, if any. */
  private async attempt(upload: Upload): Promise<Error | undefined> {
    this.startUpload(upload);
    await upload.done;
    return upload.failure;
  }

  private startUpload(upload: Upload): void {
    upload.done = this.store(upload).catch((err: unknown) => {
      upload.failure = err instanceof Error ? err : new Error(String(err));
    });
  }

  /** The file, then its manifest entry, then the committed offset past it. */
  private async store({ file, topic, partition, ctx }: Upload): Promise<void> {
    const first = BigInt(file.start);
    const last = BigInt(file.lastOffset);
    const { codec } = file.projection;
    const { db, table } = codec.table;
    const id = { db, table, tsMs: file.minTs, partition, firstOffset: first, lastOffset: last };
    const key = changeFileKey(this.o.config.prefix, id);
    const codecName = this.o.config.codec;
    const avroBody = await writeAvroContainer(codec.schema, file.records, {
      name: key,
      codec: codecName,
      deflateLevel: this.o.config.deflateLevel,
      metadata: {
        'tidemark.table': `${db}.${table}`,
        'tidemark.topic': topic,
        'tidemark.partition': String(partition),
        'tidemark.first_offset': first.toString(),
        'tidemark.last_offset': last.toString(),
      },
    });
    const body = sealObject(avroBody, this.o.keyring);
    const stored = await this.o.store.put(key, body);
    const entry: ManifestEntry = {
      table: `${db}.${table}`,
      object_key: key,
      partition,
      first_offset: first,
      last_offset: last,
      first_pos: formatPosition(file.firstPos),
      last_pos: formatPosition(file.lastPos),
      min_ts_ms: BigInt(file.minTs),
      max_ts_ms: BigInt(file.maxTs),
      rows: BigInt(file.records.length),
      bytes: BigInt(body.length),
      sha256: stored.sha256 ?? '',
      schema_fingerprint: codec.version,
      codec: codecName,
      key_id: this.o.keyring?.current.id ?? null,
      column_stats: Object.fromEntries(
        [...file.stats].map(([column, r]): [string, ColumnRange] => [
          column,
          { min: valueText(r.min), max: valueText(r.max) },
        ]),
      ),
      written_ms: BigInt(Date.now()),
      positions_ascending: file.ascending,
    };
    const mKey = manifestKey(this.o.config.prefix, id);
    await this.o.store.put(mKey, await encodeManifestEntry(entry, mKey));
    await ctx.commit(last + 1n, null);

    const labels = { table: `${db}.${table}` };
    this.o.metrics.filesWritten.inc(labels);
    this.o.metrics.bytesWritten.inc(labels, body.length);
    this.o.metrics.eventsArchived.inc(labels, file.records.length);
    this.o.metrics.lastUpload.set(Date.now() / 1000);
    this.o.logger.debug({ key, rows: file.records.length, bytes: body.length }, 'archived');
  }

  private async projectionFor(topic: string, partition: number, message: KafkaMessage): Promise<Projection> {
    const version = message.headers?.[HEADER_SCHEMA]?.toString();
    if (!version) throw unreadable(topic, partition, message.offset, `it has no ${HEADER_SCHEMA} header`);
    const known = this.projections.get(version);
    if (known) return known;
    let codec: TableCodec;
    try {
      codec = await this.o.catalog.codecFor(version, 30_000);
    } catch (err) {
      throw unreadable(topic, partition, message.offset, `its schema version ${version} is unknown`, err);
    }
    // Partitions read at once may both have waited for this version: one projection for all of them, or
    // their files would be cut for a schema change that is none.
    const projection = this.projections.get(version) ?? this.buildProjection(codec);
    this.projections.set(version, projection);
    return projection;
  }

  private buildProjection(codec: TableCodec): Projection {
    const wanted = new Set(this.o.config.columnStats[`${codec.table.db}.${codec.table.table}`] ?? []);
    const envelope = codec.schema as { fields: { name: string; type: unknown }[] };
    const before = envelope.fields.find((f) => f.name === 'before')?.type as [
      string,
      { fields: Record<string, unknown>[] },
    ];
    const row = before[1];
    const rowFields = row.fields.filter((f) => wanted.has(String(f['tidemark.column'])));
    const statFields = rowFields.map((f): [string, string] => [String(f.name), String(f['tidemark.column'])]);
    // The images only when they have columns with statistics; otherwise they are skipped, not read.
    const wantedFields = rowFields.length > 0 ? ['before', 'after', 'ts_ms', 'pos'] : ['ts_ms', 'pos'];
    const readerSchema = {
      ...envelope,
      fields: envelope.fields
        .filter((f) => wantedFields.includes(f.name))
        .map((f) => (f.name === 'before' ? { ...f, type: ['null', { ...row, fields: rowFields }] } : f)),
    };
    // Times and positions fit a double; bigint longs (slower) only when a statistics column needs them.
    const needsBigint = rowFields.some((f) => JSON.stringify(f.type).includes('"long"'));
    const reader = needsBigint
      ? avroType(readerSchema as unknown as AvroSchema)
      : avro.Type.forSchema(readerSchema as unknown as AvroSchema, { ...typeOptions(), registry: {} });
    const writer = avroType(codec.schema as unknown as AvroSchema);
    return { codec, reader, resolver: reader.createResolver(writer), statFields };
  }

  private decode(projection: Projection, topic: string, partition: number, message: KafkaMessage): Projected {
    if (!message.value) throw unreadable(topic, partition, message.offset, 'it has no value');
    try {
      return projection.reader.fromBuffer(
        message.value,
        projection.resolver as Parameters<AvroType['fromBuffer']>[1],
      ) as Projected;
    } catch (err) {
      throw unreadable(
        topic,
        partition,
        message.offset,
        `its bytes do not decode as schema ${projection.codec.version}: ${(err as Error).message}`,
        err,
      );
    }
  }
}
