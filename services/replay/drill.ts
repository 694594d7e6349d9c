// The restore drill of `tidemark verify --drill`: a consistent read of the source at a known binlog position,
// a wait until the archive holds everything up to it, a restore of the archive alone (from its snapshots and
// change files, as any restore) to that position into scratch state, and a row-by-row comparison of hashes.
// The source rows pass through capture's own column rules (excluded, masked), so they compare with what
// was archived. The consistent read stays open to the end, so a differing row can be read again and named.

import { createHash } from 'node:crypto';
import mysql from 'mysql2';
import type { RowDataPacket } from 'mysql2/promise';
import { buildShape, type TableShape } from '../capture/row-mapper.js';
import { openConsistentRead, snapshotConnectionOptions, snapshotSelect } from '../capture/snapshot.js';
import { readTableSchema } from '../capture/source-schema.js';
import { TableSelection } from '../capture/table-selection.js';
import {
  binlogSequence,
  describePosition,
  formatPosition,
  positionThrough,
  sleep,
  TidemarkError,
  type ChangeEvent,
  type Row,
  type RowValue,
  type TableSchema,
} from '../core/index.js';
import { openArchive } from './archive-reader.js';
import { committedFrontier, readTail } from './kafka-tail.js';
import { planRestore, rebuild, stateKey, type KafkaAccess, type RebuildResult } from './rebuild.js';
import { resolveTables, withKafka, type ReplayContext } from './restore.js';
import type { TargetPoint } from './target-point.js';
import { projectRow } from './targets/target.js';

export interface DrillRequest {
  tables: readonly string[];
  /** How long to wait for the archive to reach the drill's position. */
  waitSeconds: number;
}

export interface TableDrill {
  table: string;
  sourceRows: number;
  restoredRows: number;
  equal: number;
  /** Keys of rows the source has and the restore lacks, the restore has and the source lacks, or both differ. */
  missing: string[];
  extra: string[];
  differing: { key: string; columns: string[] }[];
  counts: { missing: number; extra: number; differing: number };
  schemaDifference?: string;
}

export interface DrillReport {
  /** The binlog position of the consistent read, as a point restores accept. */
  at: string;
  binlog: { file: string; offset: number };
  waitedSeconds: number;
  restoredTo: string | null;
  tables: TableDrill[];
  passed: boolean;
  seconds: number;
}

/** How many keys of each kind a report names. */
const EXAMPLES = 10;

const valueText = (v: RowValue | undefined): string =>
  v === null || v === undefined ? '\u0000' : Buffer.isBuffer(v) ? `x${v.toString('hex')}` : `s${String(v)}`;

/** A row's hash over the given columns (numbers and 64-bit integers alike by their decimal text). */
function rowHash(row: Row, columns: readonly string[]): string {
  const h = createHash('sha256');
  for (const c of columns) h.update(`${c}\u0001${valueText(row[c])}\u0002`);
  return h.digest('base64');
}

/** A source row as capture publishes it and a reader decodes it: through the column rules and the codec. */
function asArchived(shape: TableShape, raw: Record<string, unknown>): Row {
  const after = shape.mapRow(raw);
  const event: ChangeEvent = {
    op: 'r',
    before: null,
    after,
    key: shape.codec.keyOf(after),
    tsMs: 0,
    pos: { file: 0, offset: 0, row: 0 },
    tx: null,
    source: {
      serverId: 0,
      db: shape.codec.table.db,
      table: shape.codec.table.table,
      schemaVersion: shape.codec.version,
    },
  };
  return shape.codec.decode(shape.codec.encode(event)).after as Row;
}

function differingColumns(a: Row, b: Row, columns: readonly string[]): string[] {
  return columns.filter((c) => valueText(a[c]) !== valueText(b[c]));
}

/**
 * Whether the archive holds every change up to `limit`: for each partition, the first committed change
 * Kafka still has beyond the archive lies past it.
 */
export async function archiveReaches(
  ctx: ReplayContext,
  kafka: KafkaAccess,
  tables: readonly string[],
  point: TargetPoint & { kind: 'position' },
): Promise<{ reached: boolean; behind: string[] }> {
  const archive = openArchive(ctx.config);
  const limit = formatPosition(point.pos);
  const basename = point.text.replace(/\.\d+:\d+$/, '');
  const plan = await planRestore(archive, kafka, {
    at: point,
    tables,
    archiveOnly: true,
    allowGaps: false,
    useSnapshots: true,
  });
  const behind: string[] = [];
  // Capture must have sent everything up to the point: its newest checkpoint is at or past it.
  const committed = await committedFrontier(kafka.kafka, kafka.topicPrefix, ctx.logger);
  if (!committed || formatPosition(committed) < limit) {
    behind.push(
      committed
        ? `capture has committed up to ${describePosition(committed, basename)} only (is tidemark capture running?)`
        : 'capture has written no checkpoint yet',
    );
  }
  for (const t of plan.tables) {
    // Transaction markers take offsets too; a few offsets from the start of each range find its first change.
    const ranges = t.tail.map((r) => ({ ...r, to: r.to - r.from > 16n ? r.from + 16n : r.to }));
    if (ranges.length === 0) continue;
    const events = await readTail({ ...kafka, topic: t.topic, ranges, logger: ctx.logger });
    const first = new Map<number, string>();
    for (const e of events) if (!first.has(e.partition)) first.set(e.partition, formatPosition(e.event.pos));
    for (const [partition, pos] of first) {
      if (pos <= limit) behind.push(`${t.table} partition ${partition} (not archived from position ${pos})`);
    }
  }
  return { reached: behind.length === 0, behind };
}

export async function runDrill(ctx: ReplayContext, req: DrillRequest): Promise<DrillReport> {
  const started = Date.now();
  const source = ctx.config.source;
  if (!source) {
    throw new TidemarkError(
      'CONFIG_INVALID',
      'a restore drill reads the source, and source is not configured',
      {
        hint: 'give verify --drill the configuration capture runs with (source, kafka, tier.cold)',
      },
    );
  }
  if (!ctx.config.kafka) {
    throw new TidemarkError(
      'CONFIG_INVALID',
      'a restore drill needs kafka: it waits until the archive holds every change Kafka had up to the drill',
      { hint: 'give verify --drill the configuration capture runs with (source, kafka, tier.cold)' },
    );
  }
  const selection = new TableSelection({
    include: source.tables.include,
    exclude: source.tables.exclude,
    columns: source.columns,
    ...(source.maskKey !== undefined ? { maskKey: source.maskKey } : {}),
  });
  const archive = openArchive(ctx.config);
  const raw = mysql.createConnection(snapshotConnectionOptions(source));
  const conn = raw.promise();
  const hashes = new Map<string, Map<string, string>>();
  const shapes = new Map<string, TableShape>();
  const schemas = new Map<string, TableSchema>();
  let rebuilt: RebuildResult | undefined;
  try {
    const [[version]] = (await conn.query('SELECT @@version AS v')) as unknown as [[{ v: string }]];
    const point = await openConsistentRead(conn, /mariadb/i.test(version.v));
    const at = `${point.binlogFile}:${point.binlogOffset}`;
    // The state after every event ending at that offset: what the consistent read sees.
    const target: TargetPoint & { kind: 'position' } = {
      kind: 'position',
      pos: positionThrough(binlogSequence(point.binlogFile), point.binlogOffset),
      text: at,
    };
    ctx.logger.info({ at }, 'drill: consistent read of the source opened');

    return await withKafka(ctx, false, async (kafka) => {
      const access = kafka as KafkaAccess;
      const tables = (await resolveTables(archive, access, req.tables)).filter((t) => {
        const [db = '', table = ''] = t.split(/\.(.*)/s);
        return selection.captures({ db, table });
      });
      if (tables.length === 0) {
        throw new TidemarkError('BAD_ARGUMENT', 'no archived table is captured from this source', {
          hint: 'check --tables and source.tables.include',
        });
      }
      ctx.progress?.phase('reading the source');
      for (const table of tables) {
        const [db = '', name = ''] = table.split(/\.(.*)/s);
        const schema = await readTableSchema(conn, { db, table: name });
        const shape = buildShape(schema, selection.rulesFor({ db, table: name }), selection);
        shapes.set(table, shape);
        schemas.set(table, schema);
        const columns = shape.codec.table.columns.map((c) => c.name);
        const map = new Map<string, string>();
        const stream = raw.query(snapshotSelect(schema)).stream({ highWaterMark: 1000 });
        for await (const r of stream as AsyncIterable<Record<string, unknown>>) {
          const row = asArchived(shape, r);
          map.set(stateKey(shape.codec, row), rowHash(row, columns));
        }
        hashes.set(table, map);
        ctx.logger.info({ table, rows: map.size }, 'drill: source table read');
      }

      ctx.progress?.phase('waiting for the archive');
      const waitStarted = Date.now();
      for (;;) {
        const { reached, behind } = await archiveReaches(ctx, access, tables, target);
        if (reached) break;
        if (Date.now() - waitStarted > req.waitSeconds * 1000) {
          throw new TidemarkError(
            'ARCHIVE_BEHIND',
            `the archive did not reach the drill's position ${at} within ${req.waitSeconds} s: ${behind.join('; ')}`,
            {
              hint:
                'check that tidemark tier --only cold runs; a file is closed after tier.cold.rotate.maxSpanSeconds of ' +
                'event time or tier.cold.flushAfterSeconds of quiet, so wait at least that long (--wait)',
            },
          );
        }
        ctx.signal?.throwIfAborted();
        await sleep(2000, ctx.signal);
      }
      const waitedSeconds = (Date.now() - waitStarted) / 1000;

      ctx.progress?.phase('restoring from the archive');
      const plan = await planRestore(archive, access, {
        at: target,
        tables,
        archiveOnly: true,
        allowGaps: false,
        useSnapshots: true,
      });
      rebuilt = await rebuild(archive, access, plan, {
        maxKeys: ctx.config.replay.maxKeysInMemory,
        ...(ctx.config.replay.tmpDir ? { tmpDir: ctx.config.replay.tmpDir } : {}),
        logger: ctx.logger,
        progress: (events, bytes) => ctx.progress?.update(events, bytes),
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      });

      ctx.progress?.phase('comparing');
      const results: TableDrill[] = [];
      for (const t of rebuilt.tables) {
        const shape = shapes.get(t.table) as TableShape;
        const expected = hashes.get(t.table) as Map<string, string>;
        const columns = shape.codec.table.columns.map((c) => c.name);
        const restoredColumns = t.codec.table.columns.map((c) => c.name);
        const result: TableDrill = {
          table: t.table,
          sourceRows: expected.size,
          restoredRows: 0,
          equal: 0,
          missing: [],
          extra: [],
          differing: [],
          counts: { missing: 0, extra: 0, differing: 0 },
        };
        if (columns.join(',') !== restoredColumns.join(',')) {
          result.schemaDifference =
            `the source has columns (${columns.join(', ')}), the archive at ${at} has (${restoredColumns.join(', ')}); ` +
            'a DDL not captured yet, or a change of source.columns rules since';
        }
        const differingRows: Row[] = [];
        for (const [key, slot] of t.state.rows()) {
          result.restoredRows += 1;
          const row = projectRow(slot.row as Row, t.codec);
          const want = expected.get(key);
          if (want === undefined) {
            result.counts.extra += 1;
            if (result.extra.length < EXAMPLES) result.extra.push(key);
            continue;
          }
          expected.delete(key);
          if (want === rowHash(row, columns)) result.equal += 1;
          else {
            result.counts.differing += 1;
            if (differingRows.length < EXAMPLES) differingRows.push(row);
          }
        }
        result.counts.missing = expected.size;
        result.missing = [...expected.keys()].slice(0, EXAMPLES);
        // The differing rows as the source has them at the drill's position, to name the columns.
        const schema = schemas.get(t.table) as TableSchema;
        for (const row of differingRows) {
          const key = stateKey(t.codec, row);
          const masked = schema.primaryKey.some((c) => c in selection.rulesFor(schema).mask);
          const [found] = masked
            ? [[]]
            : await conn.query<RowDataPacket[]>(
                snapshotSelect(schema, true),
                schema.primaryKey.map((c) => row[c]),
              );
          const sourceRow = found[0] ? asArchived(shape, found[0]) : undefined;
          result.differing.push({ key, columns: sourceRow ? differingColumns(sourceRow, row, columns) : [] });
        }
        results.push(result);
      }
      await conn.query('COMMIT');
      const passed = results.every(
        (r) => !r.schemaDifference && r.counts.missing + r.counts.extra + r.counts.differing === 0,
      );
      return {
        at,
        binlog: { file: point.binlogFile, offset: point.binlogOffset },
        waitedSeconds,
        restoredTo: rebuilt.restoredTo ? formatPosition(rebuilt.restoredTo.pos) : null,
        tables: results,
        passed,
        seconds: (Date.now() - started) / 1000,
      };
    });
  } finally {
    for (const t of rebuilt?.tables ?? []) t.state.discard();
    await conn.end().catch(() => undefined);
  }
}
