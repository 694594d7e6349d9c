// `tidemark scheduler`: takes a synthetic snapshot on the configured cadence (replay.snapshots.everyHours),
// so restores start from a recent state. /metrics says when the last one succeeded and how long it took;
// /healthz turns unhealthy when the newest snapshot is older than two cadences or the last attempt failed.

import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { createLogger, listArchivedTables, sleep, startHttpServer, type Config } from '../core/index.js';
import { openArchive } from './archive-reader.js';
import { createSnapshot, snapshots } from './snapshots.js';

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

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}

export async function runScheduler(config: Config, options: { signal?: AbortSignal } = {}): Promise<void> {
  const logger = createLogger({ level: config.log.level, name: 'tidemark-scheduler' });
  const metrics = new SchedulerMetrics();
  const everyMs = config.replay.snapshots.everyHours * 3_600_000;
  let newestMs: number | undefined;
  let lastFailure: string | undefined;
  /** Nothing is archived yet (a new deployment): there is nothing to snapshot, which is no failure. */
  let archiveEmpty = false;
  const http = await startHttpServer({
    host: config.http.host,
    port: config.http.port,
    registry: metrics.registry,
    health: () => {
      const age = newestMs === undefined ? undefined : Date.now() - newestMs;
      const stale = !archiveEmpty && (age === undefined || age > 2 * everyMs);
      const healthy = lastFailure === undefined && !stale;
      return {
        healthy,
        status: healthy
          ? archiveEmpty
            ? 'waiting for the archive'
            : 'scheduling'
          : lastFailure
            ? 'snapshot failed'
            : 'snapshot overdue',
        details: {
          newestSnapshotAgeSeconds: age === undefined ? null : Math.round(age / 1000),
          everyHours: config.replay.snapshots.everyHours,
          lastFailure: lastFailure ?? null,
        },
      };
    },
  });
  logger.info(
    { http: `${config.http.host}:${http.port}`, everyHours: config.replay.snapshots.everyHours },
    'scheduler starting',
  );
  const controller = new AbortController();
  options.signal?.addEventListener('abort', () => controller.abort());
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const ctx = { config, logger };
  try {
    const existing = await snapshots(ctx).catch(() => []);
    const newest = existing.reduce((n, s) => Math.max(n, Number(s.created_ms)), 0);
    if (newest > 0) {
      newestMs = newest;
      metrics.lastSuccess.set(newest / 1000);
    }
    while (!controller.signal.aborted) {
      const due = (newestMs ?? 0) + everyMs;
      if (Date.now() >= due) {
        const archive = openArchive(config);
        archiveEmpty =
          (await listArchivedTables(archive.store, archive.prefix).catch(() => ['?'])).length === 0;
        if (archiveEmpty) {
          logger.info('nothing is archived yet: no snapshot to take; looking again in a minute');
          await sleep(Math.min(60_000, everyMs), controller.signal);
          continue;
        }
        try {
          const result = await createSnapshot(
            { ...ctx, signal: controller.signal },
            { tables: [], at: 'latest' },
          );
          newestMs = Date.now();
          lastFailure = undefined;
          metrics.lastSuccess.set(newestMs / 1000);
          metrics.duration.set(result.seconds);
          metrics.runs.inc({ result: result.created ? 'created' : 'unchanged' });
          for (const t of result.manifest.tables) metrics.rows.set({ table: t.table }, Number(t.rows));
          logger.info(
            { id: result.manifest.id, created: result.created, seconds: result.seconds },
            result.created ? 'snapshot written' : 'snapshot unchanged: nothing new was archived',
          );
        } catch (err) {
          if (controller.signal.aborted) break;
          lastFailure = (err as Error).message;
          metrics.runs.inc({ result: 'failed' });
          logger.error({ err }, 'snapshot failed; retrying in a minute');
          await sleep(60_000, controller.signal);
          continue;
        }
      }
      await sleep(
        Math.max(1000, Math.min(60_000, (newestMs ?? 0) + everyMs - Date.now())),
        controller.signal,
      );
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await http.close();
    logger.info('scheduler stopped');
  }
}
