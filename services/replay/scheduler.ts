// `tidemark scheduler`: the archive's housekeeping on cadences from the config. It takes a synthetic snapshot
// every replay.snapshots.everyHours, so restores start from a recent state, and verifies the archive every
// replay.verify.everyHours (integrity, and a restore drill when the source is configured). /metrics says when
// each last succeeded; /healthz turns unhealthy when the newest snapshot is older than two cadences, the last
// snapshot failed, or the last verification failed; SnapshotOverdue and VerifyFailed alerts say so loudly.

import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import {
  AlertMetrics,
  Alerter,
  createLogger,
  listArchivedTables,
  sleep,
  startHttpServer,
  type Config,
  type Logger,
} from '../core/index.js';
import { openArchive } from './archive-reader.js';
import { createSnapshot, snapshots } from './snapshots.js';
import { runVerify, type VerifyReport } from './verify.js';

export class SchedulerMetrics {
  readonly registry = new Registry();
  readonly lastSuccess = new Gauge({
    name: 'tidemark_snapshot_last_success_timestamp_seconds',
    help: 'Wall-clock time the newest snapshot was written',
    registers: [this.registry],
  });
  readonly duration = new Gauge({
    name: 'tidemark_snapshot_duration_seconds',
    help: 'How long the last snapshot took',
    registers: [this.registry],
  });
  readonly rows = new Gauge({
    name: 'tidemark_snapshot_rows',
    help: 'Rows in the newest snapshot, by table',
    labelNames: ['table'],
    registers: [this.registry],
  });
  readonly runs = new Counter({
    name: 'tidemark_snapshot_runs_total',
    help: 'Snapshot attempts by result (created, unchanged, failed)',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly verifyPassed = new Gauge({
    name: 'tidemark_verify_passed',
    help: '1 when the last verification passed, 0 when it found a problem, by kind (integrity, drill)',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  readonly verifyLastRun = new Gauge({
    name: 'tidemark_verify_last_run_timestamp_seconds',
    help: 'Wall-clock time the last verification ended, by kind (integrity, drill)',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  readonly verifyLastSuccess = new Gauge({
    name: 'tidemark_verify_last_success_timestamp_seconds',
    help: 'Wall-clock time of the last verification that passed, by kind (integrity, drill)',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  readonly verifyProblems = new Gauge({
    name: 'tidemark_verify_problems',
    help: 'Problems the last verification found, by kind (integrity, drill)',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  readonly verifyDuration = new Gauge({
    name: 'tidemark_verify_duration_seconds',
    help: 'How long the last verification took',
    registers: [this.registry],
  });
  readonly verifyFilesChecked = new Counter({
    name: 'tidemark_verify_files_checked_total',
    help: 'Archive files fetched, SHA-256 checked and decoded by verifications',
    registers: [this.registry],
  });
  readonly alerts = new AlertMetrics(this.registry);

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}

/** Records a verification in the metrics; returns the problems, for health and the alert. */
export function recordVerify(metrics: SchedulerMetrics, report: VerifyReport, nowMs = Date.now()): void {
  const kinds: [string, boolean, number][] = [];
  if (report.integrity)
    kinds.push(['integrity', report.integrity.problems.length === 0, report.integrity.problems.length]);
  if (report.drill || report.drillError) {
    const drillProblems = report.problems.filter((p) => p.startsWith('drill:')).length;
    kinds.push(['drill', drillProblems === 0, drillProblems]);
  }
  for (const [kind, passed, problems] of kinds) {
    metrics.verifyPassed.set({ kind }, passed ? 1 : 0);
    metrics.verifyLastRun.set({ kind }, nowMs / 1000);
    metrics.verifyProblems.set({ kind }, problems);
    if (passed) metrics.verifyLastSuccess.set({ kind }, nowMs / 1000);
  }
  if (report.integrity) metrics.verifyFilesChecked.inc(report.integrity.filesChecked);
}

/** One piece of housekeeping on its cadence. */
interface Job {
  name: 'snapshot' | 'verify';
  everyMs: number;
  /** When it is next due (wall clock). */
  dueMs: number;
  run(): Promise<void>;
}

export async function runScheduler(config: Config, options: { signal?: AbortSignal } = {}): Promise<void> {
  const logger = createLogger({ level: config.log.level, name: 'tidemark-scheduler' });
  const metrics = new SchedulerMetrics();
  const alerter = new Alerter({
    service: 'scheduler',
    config: config.alerts,
    logger,
    metrics: metrics.alerts,
  });
  const snapshotEveryMs = config.replay.snapshots.everyHours * 3_600_000;
  const verify = config.replay.verify;
  const verifyEveryMs = verify.everyHours * 3_600_000;
  const state = {
    newestMs: undefined as number | undefined,
    snapshotFailure: undefined as string | undefined,
    /** Nothing is archived yet (a new deployment): there is nothing to snapshot or verify, which is no failure. */
    archiveEmpty: false,
    verifyFailure: undefined as string | undefined,
    lastVerifyMs: 0,
  };
  const http = await startHttpServer({
    host: config.http.host,
    port: config.http.port,
    registry: metrics.registry,
    health: () => {
      const age = state.newestMs === undefined ? undefined : Date.now() - state.newestMs;
      const stale = !state.archiveEmpty && (age === undefined || age > 2 * snapshotEveryMs);
      const healthy = state.snapshotFailure === undefined && state.verifyFailure === undefined && !stale;
      return {
        healthy,
        status: healthy
          ? state.archiveEmpty
            ? 'waiting for the archive'
            : 'scheduling'
          : state.verifyFailure
            ? 'verification failed'
            : state.snapshotFailure
              ? 'snapshot failed'
              : 'snapshot overdue',
        details: {
          newestSnapshotAgeSeconds: age === undefined ? null : Math.round(age / 1000),
          everyHours: config.replay.snapshots.everyHours,
          lastFailure: state.snapshotFailure ?? null,
          verifyEveryHours: verify.everyHours,
          lastVerification: state.lastVerifyMs ? new Date(state.lastVerifyMs).toISOString() : null,
          verifyFailure: state.verifyFailure ?? null,
        },
      };
    },
  });
  logger.info(
    {
      http: `${config.http.host}:${http.port}`,
      snapshotEveryHours: config.replay.snapshots.everyHours,
      verifyEveryHours: verify.everyHours,
    },
    'scheduler starting',
  );
  const controller = new AbortController();
  options.signal?.addEventListener('abort', () => controller.abort());
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const ctx = { config, logger };
  const archiveIsEmpty = async () => {
    const archive = openArchive(config);
    state.archiveEmpty =
      (await listArchivedTables(archive.store, archive.prefix).catch(() => ['?'])).length === 0;
    return state.archiveEmpty;
  };
  const snapshotOverdue = () => {
    const age = state.newestMs === undefined ? undefined : Date.now() - state.newestMs;
    const overdue =
      !state.archiveEmpty &&
      age !== undefined &&
      age > snapshotEveryMs + Math.min(snapshotEveryMs, 3_600_000);
    alerter.update('SnapshotOverdue', overdue || state.snapshotFailure !== undefined, {
      severity: 'warning',
      message: state.snapshotFailure
        ? `the last snapshot failed: ${state.snapshotFailure}`
        : `the newest snapshot is ${age === undefined ? 'missing' : `${Math.round(age / 60_000)} min old`}, the cadence is every ${config.replay.snapshots.everyHours} h`,
      check: 'the scheduler log for the snapshot error; that the archive store is reachable and writable',
    });
  };

  const jobs: Job[] = [
    {
      name: 'snapshot',
      everyMs: snapshotEveryMs,
      dueMs: 0,
      run: async () => {
        if (await archiveIsEmpty()) {
          logger.info('nothing is archived yet: no snapshot to take; looking again in a minute');
          jobs[0]!.dueMs = Date.now() + Math.min(60_000, snapshotEveryMs);
          return;
        }
        try {
          const result = await createSnapshot(
            { ...ctx, signal: controller.signal },
            { tables: [], at: 'latest' },
          );
          state.newestMs = Date.now();
          state.snapshotFailure = undefined;
          metrics.lastSuccess.set(state.newestMs / 1000);
          metrics.duration.set(result.seconds);
          metrics.runs.inc({ result: result.created ? 'created' : 'unchanged' });
          for (const t of result.manifest.tables) metrics.rows.set({ table: t.table }, Number(t.rows));
          logger.info(
            { id: result.manifest.id, created: result.created, seconds: result.seconds },
            result.created ? 'snapshot written' : 'snapshot unchanged: nothing new was archived',
          );
          jobs[0]!.dueMs = state.newestMs + snapshotEveryMs;
        } catch (err) {
          if (controller.signal.aborted) return;
          state.snapshotFailure = (err as Error).message;
          metrics.runs.inc({ result: 'failed' });
          logger.error({ err }, 'snapshot failed; retrying in a minute');
          jobs[0]!.dueMs = Date.now() + 60_000;
        }
        snapshotOverdue();
      },
    },
  ];
  if (verifyEveryMs > 0) {
    jobs.push({
      name: 'verify',
      everyMs: verifyEveryMs,
      // Not at once: a deployment just started is still taking its initial snapshot.
      dueMs: Date.now() + Math.min(verifyEveryMs, 300_000),
      run: async () => {
        const job = jobs[1]!;
        if (await archiveIsEmpty()) {
          job.dueMs = Date.now() + Math.min(60_000, verifyEveryMs);
          return;
        }
        const started = Date.now();
        const drill = verify.drill && config.source !== undefined && config.kafka !== undefined;
        try {
          const report = await runVerify(
            { ...ctx, signal: controller.signal },
            {
              tables: verify.tables.include,
              exclude: verify.tables.exclude,
              integrity: true,
              drill,
              ...(verify.waitSeconds !== undefined ? { waitSeconds: verify.waitSeconds } : {}),
              // An hour of margin: a file's written_ms is the tier's clock, stamped before its manifest lands.
              sinceMs:
                verify.integrity === 'new' && state.lastVerifyMs > 0 ? state.lastVerifyMs - 3_600_000 : 0,
            },
          );
          recordVerify(metrics, report);
          metrics.verifyDuration.set((Date.now() - started) / 1000);
          state.verifyFailure = report.passed ? undefined : report.problems.join('; ');
          if (report.passed) state.lastVerifyMs = started;
          logVerify(logger, report, drill);
        } catch (err) {
          if (controller.signal.aborted) return;
          state.verifyFailure = (err as Error).message;
          metrics.verifyPassed.set({ kind: 'integrity' }, 0);
          logger.error({ err }, 'verification could not run');
        }
        alerter.update('VerifyFailed', state.verifyFailure !== undefined, {
          severity: 'critical',
          message: state.verifyFailure
            ? `verification of the archive failed: ${state.verifyFailure}`
            : 'the archive verifies again',
          check: 'run tidemark verify --drill by hand for the full report; see the runbook in the README',
        });
        job.dueMs = started + verifyEveryMs;
      },
    });
  }

  try {
    const existing = await snapshots(ctx).catch(() => []);
    const newest = existing.reduce((n, s) => Math.max(n, Number(s.created_ms)), 0);
    if (newest > 0) {
      state.newestMs = newest;
      metrics.lastSuccess.set(newest / 1000);
      jobs[0]!.dueMs = newest + snapshotEveryMs;
    }
    while (!controller.signal.aborted) {
      for (const job of jobs) {
        if (controller.signal.aborted) break;
        if (Date.now() >= job.dueMs) await job.run();
      }
      snapshotOverdue();
      const next = Math.min(...jobs.map((j) => j.dueMs));
      await sleep(Math.max(1000, Math.min(60_000, next - Date.now())), controller.signal);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await alerter.close();
    await http.close();
    logger.info('scheduler stopped');
  }
}

function logVerify(logger: Logger, report: VerifyReport, drill: boolean): void {
  const summary = {
    passed: report.passed,
    filesChecked: report.integrity?.filesChecked ?? 0,
    drill: drill
      ? report.drill
        ? { at: report.drill.at, tables: report.drill.tables.length }
        : 'failed'
      : 'off',
  };
  if (report.passed) logger.info(summary, 'verification passed');
  else logger.error({ ...summary, problems: report.problems }, 'verification failed');
}
