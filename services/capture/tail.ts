// `tidemark tail`: change events of one table decoded for a person, as they arrive (or from the start).

import { randomUUID } from 'node:crypto';
import {
  changeTopic,
  createKafka,
  describePosition,
  HEADER_SCHEMA,
  SchemaCatalog,
  TidemarkError,
  type ChangeEvent,
  type KafkaConfig,
  type Logger,
} from '../core/index.js';

export interface TailOptions {
  kafka: KafkaConfig;
  table: string;
  fromBeginning: boolean;
  /** Stop after this many events (undefined: run until the signal aborts). */
  limit: number | undefined;
  json: boolean;
  binlogBasename?: string;
  logger: Logger;
  write: (line: string) => void;
  signal: AbortSignal;
}

/** JSON replacer: bigint as digits and bytes as 0x-hex, so every value prints exactly. */
function exact(_key: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v !== null && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') {
    return `0x${Buffer.from((v as { data: number[] }).data).toString('hex')}`;
  }
  return v;
}

export function eventJson(e: ChangeEvent): string {
  return JSON.stringify(e, exact);
}

export function eventLine(e: ChangeEvent, basename?: string): string {
  const image = (row: ChangeEvent['after']) => (row === null ? '' : JSON.stringify(row, exact));
  const time = new Date(e.tsMs).toISOString();
  const change = e.op === 'u' ? `${image(e.before)} → ${image(e.after)}` : image(e.after ?? e.before);
  return `${time}  ${e.op}  ${e.source.db}.${e.source.table}  key=${e.key}  pos=${describePosition(e.pos, basename)}  tx=${e.tx ?? '-'}  ${change}`;
}

export async function tail(o: TailOptions): Promise<number> {
  const [db, table] = o.table.split('.');
  if (!db || !table)
    throw new TidemarkError('CONFIG_INVALID', `"${o.table}" is not a table name`, {
      hint: 'write it as <db>.<table>, e.g. chat.messages',
    });
  const topic = changeTopic(o.kafka.topicPrefix, db, table);
  const kafka = createKafka(o.kafka, o.logger, '-tail');
  const admin = kafka.admin();
  await admin.connect();
  const topics = await admin.listTopics();
  await admin.disconnect();
  if (!topics.includes(topic)) {
    const known = topics.filter(
      (t) => t.startsWith(`${o.kafka.topicPrefix}.`) && !/\.(checkpoints|schemas)$/.test(t),
    );
    throw new TidemarkError('CONFIG_INVALID', `no change topic ${topic} for ${o.table}`, {
      hint:
        known.length > 0
          ? `captured tables have: ${known.join(', ')}`
          : `no change topics with prefix ${o.kafka.topicPrefix} yet`,
    });
  }
  const catalog = new SchemaCatalog(kafka, o.kafka.topicPrefix, o.logger);
  const consumer = kafka.consumer({ groupId: `tidemark-tail-${randomUUID()}`, readUncommitted: false });
  let count = 0;
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: o.fromBeginning });
    await new Promise<void>((resolve, reject) => {
      o.signal.addEventListener('abort', () => resolve());
      consumer
        .run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            if (o.limit !== undefined && count >= o.limit) return;
            const version = message.headers?.[HEADER_SCHEMA]?.toString();
            if (!version || !message.value) {
              throw new TidemarkError(
                'INTERNAL',
                `${topic} partition ${partition} offset ${message.offset} is not a tidemark change event`,
              );
            }
            const event = (await catalog.codecFor(version)).decode(message.value);
            o.write(o.json ? eventJson(event) : eventLine(event, o.binlogBasename));
            count++;
            if (o.limit !== undefined && count >= o.limit) resolve();
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await catalog.close();
  }
  return count;
}
