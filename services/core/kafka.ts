// Kafka helpers shared by the services: a client whose logs go through pino, topic names, and topic creation.

import { Kafka, logLevel, type Admin, type ITopicConfig, type LogEntry, type SASLOptions } from 'kafkajs';
import type { KafkaConfig } from './config.js';
import type { Logger } from './logger.js';
import { TidemarkError } from './errors.js';
import { tlsOptions } from './tls.js';

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

export function createKafka(config: KafkaConfig, logger: Logger, clientSuffix = ''): Kafka {
  const log = logger.child({ component: 'kafkajs' });
  const ssl = tlsOptions(config.tls, 'kafka');
  return new Kafka({
    clientId: `${config.clientId}${clientSuffix}`,
    brokers: config.brokers,
    ...(ssl ? { ssl } : {}),
    ...(config.sasl ? { sasl: config.sasl as SASLOptions } : {}),
    // kafkajs logs routine retries at ERROR; they are worth a warning, not an alarm.
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...rest } = entry;
        // tidemark aborts a transaction whose retries ran out, so nothing partial is ever visible.
        if (message.startsWith('Limiting retries for the idempotent producer'))
          return log.debug(rest, message);
        log[level === logLevel.ERROR ? 'warn' : (LEVELS[level] ?? 'info')](rest, message);
      },
    retry: { initialRetryTime: config.retry.initialRetryTimeMs, retries: config.retry.retries },
  });
}

/** Kafka topic names allow letters, digits, '.', '_' and '-'; anything else in a table name becomes '_'. */
export function topicPart(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}

export function changeTopic(prefix: string, db: string, table: string): string {
  return `${prefix}.${topicPart(db)}.${topicPart(table)}`;
}

/** Header of every change event naming the schema version (fingerprint) its value is encoded with. */
export const HEADER_SCHEMA = 'tidemark.schema';

export const checkpointsTopic = (prefix: string) => `${prefix}.checkpoints`;
export const schemasTopic = (prefix: string) => `${prefix}.schemas`;

const COMPACTED: NonNullable<ITopicConfig['configEntries']> = [
  { name: 'cleanup.policy', value: 'compact' },
  { name: 'min.compaction.lag.ms', value: '60000' },
];

/** Creates the topics that do not exist yet; existing ones are left as they are. */
export async function ensureTopics(
  admin: Admin,
  topics: {
    topic: string;
    partitions: number;
    replicationFactor: number;
    compacted?: boolean;
    maxMessageBytes?: number;
  }[],
): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t.topic));
  if (missing.length === 0) return;
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((t) => ({
        topic: t.topic,
        numPartitions: t.partitions,
        replicationFactor: t.replicationFactor,
        configEntries: [
          ...(t.compacted ? COMPACTED : []),
          ...(t.maxMessageBytes ? [{ name: 'max.message.bytes', value: String(t.maxMessageBytes) }] : []),
        ],
      })),
    });
  } catch (err) {
    // Another instance may have created them in between; only a topic that still is missing is an error.
    const now = new Set(await admin.listTopics());
    const still = missing.filter((t) => !now.has(t.topic));
    if (still.length > 0) {
      throw new TidemarkError(
        'KAFKA_UNREACHABLE',
        `cannot create Kafka topics ${still.map((t) => t.topic).join(', ')}: ${(err as Error).message}`,
        {
          cause: err,
          hint: 'the Kafka user needs CREATE on the cluster or the topics; kafka.replicationFactor must not exceed the number of brokers',
        },
      );
    }
  }
}
