// services/capture: the binlog → Kafka daemon. Its public face for the CLI.

import { createLogger, startHttpServer, TidemarkError, type Config } from '../core/index.js';
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
    await http.close();
    logger.info('capture stopped');
  }
}
