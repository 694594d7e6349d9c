// The fault-injection suite: a live chat workload through the real pipeline (MariaDB → capture → Kafka →
// tier → FerretDB and MinIO, an encrypted archive, masked columns) while faults are injected one after
// another: kill -9 capture, kill -9 tier, Kafka restarted, MinIO stopped, FerretDB stopped, MariaDB
// restarted. After each fault the workload pauses until the pipeline has caught up (the time to recover),
// then: the hot replica equals the source, the archive verifies (contiguous, every new file checked), and a
// restore at a random earlier consistent read equals the source at that read. The result is a table.
// `make faults` runs it in full; `make test` runs one fault of each kind with short outages.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  readAvroFile,
  configSchema,
  createLogger,
  type Config,
  type Row,
} from '../../services/core/index.js';
import { archiveReaches } from '../../services/replay/drill.js';
import { runRestore, withKafka } from '../../services/replay/restore.js';
import { parseTargetPoint, type TargetPoint } from '../../services/replay/target-point.js';
import { runVerify } from '../../services/replay/verify.js';
import { binlogEnd } from '../../services/capture/source-checks.js';
import type { CaptureProcess } from '../support/capture-process.js';
import { restoredState, sameState, sourceSnapshot } from '../support/change-ledger.js';
import { eventually } from '../support/eventually.js';
import { localServices } from '../support/local-services.js';
import { tierFixture, type TierFixture } from '../support/tier-fixture.js';
import { replicaDiff, sleep } from '../support/tier-verify.js';
import { Workload, type RowStatements } from '../support/workload.js';

const services = fileURLToPath(new URL('../../deploy/local/services.sh', import.meta.url));
const logger = createLogger({ level: 'warn' });

export const FAULT_KINDS = [
  'kill -9 capture',
  'kill -9 tier',
  'restart Kafka',
  'stop MinIO',
  'stop FerretDB',
  'restart MariaDB',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultRow {
  kind: FaultKind;
  injected: number;
  /** Seconds from the fault's end (the process or server back) until the pipeline had caught up. */
  recoverSeconds: number[];
}

export interface FaultReport {
  rows: FaultRow[];
  faults: number;
  /** Row changes the workload committed at the source. */
  rowsWritten: number;
  /** Rows missing or different: in restores at random points, in the hot replica, in the final restore. */
  rowsLost: number;
  /** Rows present twice in any final state (a restore's files). */
  duplicateRows: number;
  restoresChecked: number;
  /** Problems verify found in the archive (gaps, overlaps, damaged files). */
  archiveProblems: string[];
  /** Configured secrets found in any log line of the suite's daemons. */
  secretsInLogs: string[];
  seconds: number;
}

export interface FaultOptions {
  faults: number;
  /** How long MinIO and FerretDB stay stopped. */
  outageSeconds: number;
  /** Row changes per second of the workload. */
  rate: number;
  log: (line: string) => void;
  /** Each phase as it starts, for following a long run. */
  trace?: (line: string) => void;
}

const CHANGES: RowStatements = {
  insert: (id) => [
    'INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, NULL, UTC_TIMESTAMP(6))',
    [id, id % 20, id % 50, `message ${id} 你好 👋`, `${id}.5`, JSON.stringify({ r: { '👍': id % 3 } })],
  ],
  update: (id) => ['UPDATE messages SET body = ?, amount = amount + 1 WHERE id = ?', [`edited ${id} ✏️`, id]],
  delete: (id) => ['DELETE FROM messages WHERE id = ?', [id]],
};

const TABLES = ['messages'];

function service(action: 'up' | 'down', name: string): void {
  execFileSync(services, [action, name], { stdio: 'ignore' });
}

export async function runFaultSuite(o: FaultOptions): Promise<FaultReport> {
  const started = Date.now();
  // Every server up before the first fault (an earlier run cut short may have left one stopped).
  for (const name of ['mariadb', 'kafka', 'minio', 'ferretdb']) service('up', name);
  const key = randomBytes(32).toString('hex');
  const maskKey = randomBytes(24).toString('hex');
  const t: TierFixture = await tierFixture({
    store: 's3',
    partitions: 2,
    configureTier: (tier) => {
      const cold = tier.cold as Record<string, unknown>;
      cold.encryption = { keyId: 'k1', keys: { k1: key } };
      cold.rotate = { maxEvents: 500, maxSpanSeconds: 5 };
    },
    configureCapture: (c, db) => {
      const source = c.source as Record<string, unknown>;
      source.maskKey = maskKey;
      source.columns = { [`${db}.users`]: { mask: { name: 'hash' } } };
    },
  });
  const s = localServices();
  const secrets = [t.fx.config.source!.password!, s.s3.secretAccessKey, key, maskKey].filter(
    (x) => x.length >= 8,
  );
  const config: Config = configSchema.parse({ ...structuredClone(t.tierRaw), source: t.fx.raw.source });
  const processes: CaptureProcess[] = [t.capture];
  const out = mkdtempSync(join(tmpdir(), 'tidemark-faults-'));
  const report: FaultReport = {
    rows: FAULT_KINDS.map((kind) => ({ kind, injected: 0, recoverSeconds: [] })),
    faults: 0,
    rowsWritten: 0,
    rowsLost: 0,
    duplicateRows: 0,
    restoresChecked: 0,
    archiveProblems: [],
    secretsInLogs: [],
    seconds: 0,
  };
  const points: { at: string; states: Map<string, Map<string, Row>> }[] = [];
  t.fx.admin.on('error', () => undefined);
  const workload = new Workload(t.fx.admin, CHANGES, {
    firstNewId: 1,
    reconnect: async () => {
      await t.fx.reconnect();
      t.fx.admin.on('error', () => undefined);
      return t.fx.admin;
    },
  });
  let tier: CaptureProcess | undefined;
  try {
    t.capture.start();
    await t.capture.waitForStatus('streaming', 120_000);
    tier = await t.newTier();
    processes.push(tier);
    tier.start();
    let verifiedUpTo = 0;

    /** Waits until capture, Kafka, the archive and the replica hold everything the source has. */
    const caughtUp = async (): Promise<void> => {
      const phase = (what: string) => o.trace?.(`  ${what}`);
      phase('waiting for capture to stream');
      await eventually(
        'capture streaming',
        async () => ((await t.capture.health())?.status === 'streaming' ? true : undefined),
        300_000,
      );
      const end = await eventually(
        'the source binlog end',
        async () => {
          try {
            return await binlogEnd(t.fx.admin);
          } catch (err) {
            // The admin connection did not survive a restart of the source.
            await t.fx.reconnect().catch(() => undefined);
            t.fx.admin.on('error', () => undefined);
            throw err;
          }
        },
        120_000,
      );
      phase(`waiting for the archive to reach ${end.file}:${end.offset}`);
      const target = parseTargetPoint(`${end.file}:${end.offset}`) as TargetPoint & { kind: 'position' };
      const tables = TABLES.map((x) => `${t.fx.db}.${x}`);
      await eventually(
        'the archive reaching the source',
        () =>
          withKafka({ config, logger }, false, async (kafka) => {
            const { reached, behind } = await archiveReaches({ config, logger }, kafka!, tables, target);
            // Thrown, so a run that gives up says what was still behind.
            if (!reached) throw new Error(behind.join('; '));
            return true;
          }),
        600_000,
        // Files that overlap stay so: no point waiting.
        (err) => /overlap/.test(String(err)),
      );
      phase('waiting for the hot replica');
      // The replica: equal to the source within a few minutes, or what differs counts as lost.
      const deadline = Date.now() + 180_000;
      for (;;) {
        const diff = await replicaDiff(t, 'messages').catch(() => undefined);
        const wrong = diff ? diff.missing.length + diff.extra.length + diff.different.length : -1;
        if (wrong === 0) break;
        if (Date.now() > deadline) {
          report.rowsLost += Math.max(wrong, 0);
          o.log(`  hot replica differs from the source: ${JSON.stringify(diff).slice(0, 500)}`);
          break;
        }
        await sleep(1000);
      }
    };

    /** A consistent read of the source now, to restore to later. */
    const remember = async () => {
      const snap = await sourceSnapshot(t.fx.config.source!, t.fx.db, TABLES);
      points.push({ at: `${snap.binlogFile}:${snap.binlogOffset}`, states: snap.states });
    };

    /** A restore to a random remembered point, compared with the source then; returns rows lost, duplicated. */
    const restoreCheck = async (i: number, point = points[Math.floor(Math.random() * points.length)]!) => {
      const name = `restore-${i}`;
      await runRestore(
        { config, logger },
        {
          at: point.at,
          tables: TABLES.map((x) => `${t.fx.db}.${x}`),
          where: [],
          to: `dir:${join(out, name)}`,
          format: 'avro',
          force: false,
          allowGaps: false,
          archiveOnly: false,
          maxKeys: 1_000_000,
          reason: 'fault suite check',
        },
      );
      report.restoresChecked++;
      for (const table of TABLES) {
        const file = `${t.fx.db}.${table}.avro`;
        const got = await restoredState(join(out, name), file, ['id']);
        const { records } = await readAvroFile(readFileSync(join(out, name, file)), file);
        report.duplicateRows += records.length - got.size;
        const diff = sameState(got, point.states.get(table)!);
        report.rowsLost += diff.missing.length + diff.different.length + diff.extra.length;
        if (diff.missing.length + diff.different.length + diff.extra.length > 0) {
          o.log(`  restore at ${point.at}: ${JSON.stringify(diff).slice(0, 500)}`);
        }
      }
    };

    const inject = async (kind: FaultKind): Promise<number> => {
      const outage = o.outageSeconds * 1000;
      switch (kind) {
        case 'kill -9 capture':
          await t.capture.kill9();
          await sleep(500 + Math.random() * 2000);
          t.capture.start();
          return Date.now();
        case 'kill -9 tier':
          await tier!.kill9();
          await sleep(500 + Math.random() * 2000);
          tier!.start();
          return Date.now();
        case 'restart Kafka':
          service('down', 'kafka');
          await sleep(2000);
          service('up', 'kafka');
          return Date.now();
        case 'stop MinIO':
          service('down', 'minio');
          await sleep(outage);
          service('up', 'minio');
          return Date.now();
        case 'stop FerretDB':
          service('down', 'ferretdb');
          await sleep(outage);
          service('up', 'ferretdb');
          return Date.now();
        case 'restart MariaDB':
          service('down', 'mariadb');
          await sleep(2000);
          service('up', 'mariadb');
          return Date.now();
      }
    };

    for (let i = 0; i < o.faults; i++) {
      const kind = FAULT_KINDS[i % FAULT_KINDS.length]!;
      workload.start(o.rate);
      await sleep(1500 + Math.random() * 2000);
      await remember();
      await sleep(500 + Math.random() * 1500);
      o.trace?.(`injecting: ${kind}`);
      const backAt = await inject(kind);
      await sleep(1000 + Math.random() * 2000);
      await workload.stop();
      await caughtUp();
      const seconds = (Date.now() - backAt) / 1000;
      const row = report.rows.find((r) => r.kind === kind)!;
      row.injected++;
      row.recoverSeconds.push(seconds);
      report.faults++;
      o.trace?.('  verifying the archive and restoring a random point');
      const checkFrom = Date.now();
      const verified = await runVerify(
        { config, logger },
        {
          tables: TABLES.map((x) => `${t.fx.db}.${x}`),
          integrity: true,
          drill: false,
          sinceMs: verifiedUpTo,
        },
      );
      verifiedUpTo = checkFrom - 60_000;
      report.archiveProblems.push(...verified.problems);
      await restoreCheck(i);
      o.log(
        `fault ${i + 1}/${o.faults}: ${kind}, caught up ${seconds.toFixed(1)} s after; ` +
          `${workload.committed} changes so far, archive ${verified.passed ? 'verifies' : 'FAILS'}, ` +
          `lost ${report.rowsLost}, duplicated ${report.duplicateRows}`,
      );
    }
    // The end: the latest state restored equals the source, and the replica too.
    await remember();
    await restoreCheck(o.faults, points.at(-1));
    report.rowsWritten = workload.committed;
  } finally {
    await workload.stop().catch(() => undefined);
    for (const name of ['mariadb', 'kafka', 'minio', 'ferretdb']) {
      try {
        service('up', name);
      } catch {
        // reported by the next step that needs it
      }
    }
    for (const p of processes) await p.stop().catch(() => undefined);
    // Every log line of every daemon of the suite, searched for the configured secrets.
    for (const p of processes) {
      let text = '';
      try {
        text = readFileSync(p.logFile, 'utf8');
      } catch {
        continue;
      }
      for (const secret of secrets) {
        if (text.includes(secret)) report.secretsInLogs.push(`${p.command} log ${p.logFile}`);
      }
    }
    await t.drop().catch(() => undefined);
  }
  report.seconds = (Date.now() - started) / 1000;
  return report;
}

/** The report as the README shows it. */
export function faultTable(r: FaultReport): string {
  const lines = [
    '| fault | injected | time to recover (median / max) |',
    '| --- | ---: | --- |',
    ...r.rows.map((row) => {
      const sorted = [...row.recoverSeconds].sort((a, b) => a - b);
      const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
      const max = sorted.at(-1) ?? 0;
      return `| ${row.kind} | ${row.injected} | ${median.toFixed(1)} s / ${max.toFixed(1)} s |`;
    }),
    `| **total** | **${r.faults}** | |`,
    '',
    `| rows written | rows lost | duplicate rows in any final state | restores checked | archive problems |`,
    '| ---: | ---: | ---: | ---: | ---: |',
    `| ${r.rowsWritten} | ${r.rowsLost} | ${r.duplicateRows} | ${r.restoresChecked} | ${r.archiveProblems.length} |`,
  ];
  return `${lines.join('\n')}\n`;
}
