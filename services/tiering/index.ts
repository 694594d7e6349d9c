// services/tiering: the hot MongoDB replica and the cold object-store archive, each its own consumer group
// over the change topics. Its public face for the CLI.

import {
  Alerter,
  createKafka,
  createLogger,
  openObjectStore,
  SchemaCatalog,
  startHttpServer,
  tableMatcher,
  TidemarkError,
  type Config,
} from '../core/index.js';
import { ColdArchive, keyringFromConfig } from './cold-archive.js';
import { TierConsumer } from './consumer.js';
import { HotReplica } from './hot-replica.js';
import { TierMetrics } from './metrics.js';

export { ColdArchive, cutMetadata, parseCutMetadata, keyringFromConfig } from './cold-archive.js';
export { HotReplica, META, mysqlTimeText, type RowMeta } from './hot-replica.js';
export { TierConsumer } from './consumer.js';
export { TierMetrics } from './metrics.js';

export type TierPart = 'hot' | 'cold';

export interface TierDaemonOptions {
  only?: TierPart;
  signal?: AbortSignal;
}

/** Runs the hot and/or cold consumer with /metrics and /healthz until SIGINT/SIGTERM (or the signal). */
export async function runTierDaemon(config: Config, options: TierDaemonOptions = {}): Promise<void> {
  const { kafka, tier } = config;
  if (!kafka || !tier) {
    throw new TidemarkError(
      'CONFIG_INVALID',
      `tier needs the ${!kafka ? 'kafka' : 'tier'} section in the configuration`,
      {
        hint: 'see deploy/tidemark.example.yaml',
      },
    );
  }
  const parts: TierPart[] = options.only ? [options.only] : (['hot', 'cold'] as const).filter((p) => tier[p]);
  for (const part of parts) {
    if (!tier[part]) {
      throw new TidemarkError(
        'CONFIG_INVALID',
        `tier.${part} is not configured, so --only ${part} has nothing to run`,
        {
          hint: `add a tier.${part} section (see deploy/tidemark.example.yaml)`,
        },
      );
    }
  }
  if (parts.length === 0) {
    throw new TidemarkError('CONFIG_INVALID', 'the tier section configures neither hot nor cold', {
      hint: 'add tier.hot (MongoDB) and/or tier.cold (object store)',
    });
  }
  const logger = createLogger({ level: config.log.level, name: 'tidemark-tier' });
  const metrics = new TierMetrics();
  const client = createKafka(kafka, logger, '-tier');
  const catalog = new SchemaCatalog(client, kafka.topicPrefix, logger);
  const group = tier.group ?? `${kafka.topicPrefix}.tier`;
  const selected = tableMatcher(tier.tables.include, tier.tables.exclude);
  const consumers = new Map<TierPart, TierConsumer>();
  for (const part of parts) {
    const sink =
      part === 'hot'
        ? new HotReplica({ config: tier.hot!, catalog, logger: logger.child({ part }), metrics })
        : new ColdArchive({
            store: openObjectStore(tier.cold!.url, {
              ...tier.cold!.s3,
              ...(tier.cold!.s3.endpoint ? { endpoint: tier.cold!.s3.endpoint } : {}),
            }),
            config: tier.cold!,
            keyring: keyringFromConfig(tier.cold!.encryption),
            catalog,
            logger: logger.child({ part }),
            metrics,
          });
    consumers.set(
      part,
      new TierConsumer({
        kafka: client,
        groupId: `${group}.${part}`,
        name: part,
        topicPrefix: kafka.topicPrefix,
        selected,
        sink,
        logger: logger.child({ part }),
        metrics,
        retry: tier.retry,
        maxBytesPerPartition: tier.maxBytesPerPartition,
        topicRefreshMs: tier.topicRefreshSeconds * 1000,
        sessionTimeoutMs: tier.sessionTimeoutSeconds * 1000,
      }),
    );
  }
  const http = await startHttpServer({
    host: config.http.host,
    port: config.http.port,
    registry: metrics.registry,
    health: () => {
      const details: Record<string, unknown> = {};
      let healthy = true;
      for (const [part, consumer] of consumers) {
        const stopped = Object.fromEntries(consumer.stoppedPartitions);
        const ok =
          consumer.isRunning && consumer.stoppedPartitions.size === 0 && consumer.lastFailure === undefined;
        healthy &&= ok;
        details[part] = {
          running: consumer.isRunning,
          stoppedPartitions: stopped,
          lastFailure: consumer.lastFailure,
        };
      }
      return { healthy, status: healthy ? 'tiering' : 'degraded', details };
    },
  });
  logger.info({ http: `${config.http.host}:${http.port}`, parts, group }, 'tier starting');
  // A store that keeps failing raises an alert; the batches stay in Kafka meanwhile.
  const alerter = new Alerter({ service: 'tier', config: config.alerts, logger, metrics: metrics.alerts });
  const watch = setInterval(() => {
    for (const [part, consumer] of consumers) {
      const since = consumer.failingSince;
      const failingMs = since === undefined ? 0 : Date.now() - since;
      const store =
        part === 'cold' ? `the archive (${tier.cold!.url})` : `MongoDB (database ${tier.hot!.database})`;
      alerter.update(
        part === 'cold' ? 'ArchiveUploadFailing' : 'HotReplicaFailing',
        failingMs > config.alerts.storeFailingSeconds * 1000,
        {
          severity: 'critical',
          message:
            failingMs > 0
              ? `writes to ${store} have failed for ${Math.round(failingMs / 1000)} s: ${consumer.lastFailure ?? 'see the tier log'}`
              : `writes to ${store} succeed again`,
          check:
            part === 'cold'
              ? 'that the object store is up and the credentials can write; the changes wait in Kafka, within its retention'
              : 'that MongoDB is up and reachable with tier.hot.uri; the changes wait in Kafka, within its retention',
        },
      );
    }
  }, 1000);
  watch.unref();
  const controller = new AbortController();
  options.signal?.addEventListener('abort', () => controller.abort());
  const stop = (signal: string) => {
    logger.info({ signal }, 'stopping: finishing the batches in hand');
    controller.abort();
  };
  const onInt = () => stop('SIGINT');
  const onTerm = () => stop('SIGTERM');
  process.once('SIGINT', onInt);
  process.once('SIGTERM', onTerm);
  try {
    await Promise.all([...consumers.values()].map((c) => c.run(controller.signal)));
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    clearInterval(watch);
    await alerter.close();
    logger.debug('stopping: consumers stopped');
    await catalog.close();
    logger.debug('stopping: schema reader closed');
    await http.close();
    logger.info('tier stopped');
  }
}
