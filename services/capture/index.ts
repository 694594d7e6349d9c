// services/capture: the binlog → Kafka daemon. Its public face for the CLI.

import { Alerter, createLogger, startHttpServer, TidemarkError, type Config } from '../core/index.js';
import { Capture } from './capture.js';
import { CaptureMetrics } from './metrics.js';

export { Capture } from './capture.js';
export { CaptureMetrics } from './metrics.js';
export { tail, eventJson, eventLine } from './tail.js';
export { decodeCheckpoint, type Checkpoint } from './kafka-sink.js';

export interface CaptureDaemonOptions {
  resnapshot?: boolean;
}

/** Runs capture with /metrics and /healthz until SIGINT or SIGTERM, then flushes, checkpoints and exits. */
export async function runCaptureDaemon(config: Config, options: CaptureDaemonOptions = {}): Promise<void> {
  const { source, kafka } = config;
  if (!source || !kafka) {
    throw new TidemarkError(
      'CONFIG_INVALID',
      `capture needs the ${!source ? 'source' : 'kafka'} section in the configuration`,
      {
        hint: 'see deploy/tidemark.example.yaml',
      },
    );
  }
  const logger = createLogger({ level: config.log.level, name: 'tidemark-capture' });
  const metrics = new CaptureMetrics();
  const capture = new Capture({
    source,
    kafka,
    capture: config.capture,
    logger,
    metrics,
    resnapshot: options.resnapshot ?? false,
  });
  const http = await startHttpServer({
    host: config.http.host,
    port: config.http.port,
    registry: metrics.registry,
    health: () => ({
      healthy:
        metrics.current === 'streaming' || metrics.current === 'standby' || metrics.current === 'snapshot',
      status: metrics.current,
      details: { captureId: capture.captureId, checkpoint: capture.lastCheckpoint },
    }),
  });
  logger.info({ http: `${config.http.host}:${http.port}`, captureId: capture.captureId }, 'capture starting');
  const alerter = new Alerter({ service: 'capture', config: config.alerts, logger, metrics: metrics.alerts });
  const watch = setInterval(captureWatcher(metrics, alerter, config), 1000);
  watch.unref();
  const controller = new AbortController();
  const stop = (signal: string) => {
    logger.info({ signal }, 'stopping: flushing and committing the last checkpoint');
    controller.abort();
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  try {
    await capture.run(controller.signal);
  } finally {
    clearInterval(watch);
    await alerter.close();
    await http.close();
    logger.info('capture stopped');
  }
}

/**
 * The capture alerts, looked at every second: a silent source; lag beyond the threshold, or capture unable
 * to stream (reconnecting, Kafka or the source down) for that long.
 */
function captureWatcher(metrics: CaptureMetrics, alerter: Alerter, config: Config): () => void {
  let downSince: number | undefined;
  return () => {
    const silent = metrics.sourceSilentNow();
    alerter.update('SourceSilent', silent, {
      severity: 'critical',
      message: silent
        ? `the source sent no event and no heartbeat for more than ${config.capture.silentAfterSeconds} s`
        : 'the source speaks again',
      check:
        'that the source server is up and reachable, and that its binary log is being written (SHOW MASTER STATUS)',
    });
    const down = metrics.current === 'reconnecting' || metrics.current === 'starting';
    if (!down) downSince = undefined;
    else downSince ??= Date.now();
    const downMs = downSince === undefined ? 0 : Date.now() - downSince;
    const lag = metrics.current === 'streaming' ? metrics.lagNow() : 0;
    const limit = config.alerts.captureLagSeconds;
    const lagging = lag > limit || downMs > limit * 1000;
    alerter.update('CaptureLagging', lagging, {
      severity: 'warning',
      message: lagging
        ? lag > limit
          ? `capture is ${Math.round(lag)} s behind the source (alerts.captureLagSeconds: ${limit})`
          : `capture has not been streaming for ${Math.round(downMs / 1000)} s (state ${metrics.current})`
        : 'capture has caught up',
      check: 'that Kafka and the source are up (tidemark_capture_kafka_commit_seconds), and the capture log',
    });
  };
}
