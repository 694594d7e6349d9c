// Query benchmark: an archive of BENCH_EVENTS chat-message changes over BENCH_DAYS days (written by the
// tier's cold-archive writer, see archive.ts), then `count(*)` and a group-by over all of it and over one
// day, each through a whole `tidemark query` session (manifest listing, file selection, fetching and
// checking files, DuckDB). Baseline in the same run: decoding the same files with avsc alone. Answers are
// checked against the events written. Run with `make bench BENCH=query` (npx tsx test/bench/run.ts query);
// about 4 minutes at the default size, most of it writing the archive.
//
//   BENCH_EVENTS  change events in the archive (default 5,000,000)
//   BENCH_DAYS    days they span (default 30)
//   BENCH_ARCHIVE_DIR  keep the archive in this directory and reuse it on the next run (same size knobs)

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import avsc from 'avsc';
import { configSchema, createLogger, type Config } from '../../../services/core/index.js';
import { writeResult } from '../../../services/query/output.js';
import { QuerySession } from '../../../services/query/session.js';
import { fmt, positiveNumber, rate, report, step, type Measurement } from '../measure.js';
import { errorText, printFailures, printTargets, type Target } from '../outcome.js';
import { BASE_MS, DAY_MS, writeArchive, type Expected } from './archive.js';

const EVENTS = Math.floor(positiveNumber('BENCH_EVENTS', 5_000_000));
const DAYS = Math.floor(positiveNumber('BENCH_DAYS', 30));
const TARGETS = { rowsPerSecond: 1_000_000, dayBytesShare: 1 / 20 };
const TABLE = 'changes."chat.messages"';

const logger = createLogger({ level: 'warn' });
const KEPT = process.env.BENCH_ARCHIVE_DIR;
const dir = KEPT ?? mkdtempSync(join(tmpdir(), 'tidemark-bench-query-'));
const failures: string[] = [];

function dataFiles(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.parentPath.includes(`${join('a', 'changes')}`))
    .map((e) => join(e.parentPath, e.name));
}

/** avsc alone: every record of every file decoded with the schema the file carries. */
async function avscDecode(files: string[]): Promise<number> {
  let n = 0;
  for (const file of files) {
    await new Promise<void>((resolve, reject) => {
      const decoder = new avsc.streams.BlockDecoder({
        parseHook: (schema) => avsc.Type.forSchema(schema, { wrapUnions: false }),
      });
      decoder.on('data', () => n++);
      decoder.on('end', resolve);
      decoder.on('error', reject);
      decoder.end(readFileSync(file));
    });
  }
  return n;
}

interface Run {
  m: Measurement;
  rows: Record<string, unknown>[];
  bytes: number;
  files: number;
}

async function run(name: string, sql: string, config: Config, inScope: number): Promise<Run> {
  let rows: Record<string, unknown>[] = [];
  let bytes = 0;
  let files = 0;
  const m = await step(name, 'events', async () => {
    const session = await QuerySession.open({ config, logger }, { sql }, true);
    try {
      const lines: string[] = [];
      await writeResult(session, sql, 'jsonl', (l) => lines.push(l));
      rows = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      for (const d of session.plan.changes[0]?.decisions ?? []) {
        if (!d.read) continue;
        bytes += Number(d.entry.bytes);
        files++;
      }
    } finally {
      await session.close();
    }
    return inScope;
  });
  return { m, rows, bytes, files };
}

try {
  const started = Date.now();
  const expectedFile = join(dir, 'expected.json');
  let expected: Expected;
  if (KEPT && existsSync(expectedFile)) {
    expected = JSON.parse(readFileSync(expectedFile, 'utf8')) as Expected;
    if (expected.events !== EVENTS || expected.perDay.length !== DAYS) {
      throw new Error(
        `${dir} holds an archive of ${expected.events} events over ${expected.perDay.length} days`,
      );
    }
    console.log(`reusing the archive in ${dir}`);
  } else {
    console.log(`writing an archive of ${fmt(EVENTS)} changes over ${DAYS} days into ${dir} …`);
    expected = await writeArchive(dir, EVENTS, DAYS);
    if (KEPT) writeFileSync(expectedFile, JSON.stringify(expected));
  }
  const files = dataFiles(dir);
  console.log(`  ${files.length} data files in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  const config = configSchema.parse({
    tier: { cold: { url: `dir:${dir}`, prefix: 'a' } },
    log: { level: 'warn' },
  });

  const baseline = await step('avsc alone: decode every file', 'events', () => avscDecode(files));
  const day = Math.floor(DAYS / 2);
  const dayFrom = new Date(BASE_MS + day * DAY_MS).toISOString().slice(0, 10);
  const dayTo = new Date(BASE_MS + (day + 1) * DAY_MS).toISOString().slice(0, 10);
  const oneDay = `_ts >= TIMESTAMP '${dayFrom}' AND _ts < TIMESTAMP '${dayTo}'`;
  const inDay = expected.perDay[day] as number;

  const fullCount = await run('count(*), everything', `SELECT count(*) AS n FROM ${TABLE}`, config, EVENTS);
  const fullGroup = await run(
    'group by room and op, everything',
    `SELECT room_id, _op, count(*) AS n FROM ${TABLE} GROUP BY ALL`,
    config,
    EVENTS,
  );
  const dayCount = await run(
    `count(*), ${dayFrom}`,
    `SELECT count(*) AS n FROM ${TABLE} WHERE ${oneDay}`,
    config,
    inDay,
  );
  const dayGroup = await run(
    `group by room and op, ${dayFrom}`,
    `SELECT room_id, _op, count(*) AS n FROM ${TABLE} WHERE ${oneDay} GROUP BY ALL`,
    config,
    inDay,
  );

  const total = (r: Run) => r.rows.reduce((n, x) => n + Number(x.n), 0);
  const check = (what: string, got: number, want: number) => {
    if (got !== want) failures.push(`${what}: ${fmt(got)} events, the archive holds ${fmt(want)}`);
  };
  check('count(*)', total(fullCount), expected.events);
  check('group by', total(fullGroup), expected.events);
  check(`count(*) on ${dayFrom}`, total(dayCount), inDay);
  check(`group by on ${dayFrom}`, total(dayGroup), inDay);
  const ops = new Map<string, number>();
  for (const r of fullGroup.rows) ops.set(r._op as string, (ops.get(r._op as string) ?? 0) + Number(r.n));
  for (const [op, n] of Object.entries(expected.perOp)) check(`group by, op ${op}`, ops.get(op) ?? 0, n);

  report(
    'Query over the archive (events in scope per second; baseline: avsc decoding every file)',
    [baseline, fullCount.m, fullGroup.m, dayCount.m, dayGroup.m],
    baseline,
  );
  console.log('\nBytes read');
  for (const r of [fullCount, fullGroup, dayCount, dayGroup]) {
    console.log(
      `  ${r.m.name.padEnd(40)} ${fmt(r.files).padStart(6)} files  ${fmt(r.bytes).padStart(14)} bytes`,
    );
  }
  const share = dayCount.bytes / fullCount.bytes;
  const targets: Target[] = [
    {
      what: `full scan count(*) ≥ ${fmt(TARGETS.rowsPerSecond)} rows/s`,
      met: rate(fullCount.m) >= TARGETS.rowsPerSecond,
      detail: `${fmt(rate(fullCount.m))} rows/s (${(rate(fullCount.m) / rate(baseline)).toFixed(2)}× avsc alone)`,
    },
    {
      what: `full scan group-by ≥ ${fmt(TARGETS.rowsPerSecond)} rows/s`,
      met: rate(fullGroup.m) >= TARGETS.rowsPerSecond,
      detail: `${fmt(rate(fullGroup.m))} rows/s (${(rate(fullGroup.m) / rate(baseline)).toFixed(2)}× avsc alone)`,
    },
    {
      what: 'one day reads ≤ 1/20 of the bytes of the full scan',
      met: share <= TARGETS.dayBytesShare,
      detail: `1/${(1 / share).toFixed(1)} (${fmt(dayCount.bytes)} of ${fmt(fullCount.bytes)} bytes)`,
    },
  ];
  printTargets(targets);
} catch (err) {
  failures.push(errorText(err));
} finally {
  if (!KEPT) rmSync(dir, { recursive: true, force: true });
}
printFailures(failures);
