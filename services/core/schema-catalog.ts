// The table schemas published in <prefix>.schemas, by version, for every reader of change topics. A schema
// is committed in the same Kafka transaction as the first event that uses it, or an earlier one, so a
// reader that meets an unknown version finds it by following the schemas topic.

import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import { TableCodec } from './change-event.js';
import { TidemarkError } from './errors.js';
import { schemasTopic } from './kafka.js';
import type { Logger } from './logger.js';

export class SchemaCatalog {
  private readonly codecs = new Map<string, TableCodec>();
  private readonly waiters = new Map<string, (() => void)[]>();
  private consumer: Consumer | undefined;
  private starting: Promise<void> | undefined;

  constructor(
    private readonly kafka: Kafka,
    private readonly prefix: string,
    private readonly logger: Logger,
  ) {}

  /** Adds a schema known from elsewhere (e.g. the archive). */
  add(schema: Record<string, unknown>): TableCodec {
    const codec = TableCodec.fromSchema(schema);
    if (!this.codecs.has(codec.version)) this.codecs.set(codec.version, codec);
    for (const wake of this.waiters.get(codec.version) ?? []) wake();
    this.waiters.delete(codec.version);
    return codec;
  }

  get(version: string): TableCodec | undefined {
    return this.codecs.get(version);
  }

  /** The codec of a schema version, following the schemas topic until it appears (or timeoutMs passes). */
  async codecFor(version: string, timeoutMs = 30_000): Promise<TableCodec> {
    const known = this.codecs.get(version);
    if (known) return known;
    await this.follow();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new TidemarkError(
            'INTERNAL',
            `schema version ${version} is not in ${schemasTopic(this.prefix)} after ${timeoutMs / 1000} s`,
            {
              hint: 'the events were written by a producer that did not publish their schema; check kafka.topicPrefix',
            },
          ),
        );
      }, timeoutMs);
      const list = this.waiters.get(version) ?? [];
      list.push(() => {
        clearTimeout(timer);
        resolve();
      });
      this.waiters.set(version, list);
      if (this.codecs.has(version)) {
        clearTimeout(timer);
        resolve();
      }
    });
    return this.codecs.get(version) as TableCodec;
  }

  private follow(): Promise<void> {
    this.starting ??= (async () => {
      const consumer = this.kafka.consumer({
        groupId: `tidemark-schemas-${randomUUID()}`,
        readUncommitted: false,
      });
      this.consumer = consumer;
      await consumer.connect();
      await consumer.subscribe({ topic: schemasTopic(this.prefix), fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachMessage: ({ message }) => {
          if (!message.value) return Promise.resolve();
          try {
            this.add(JSON.parse(message.value.toString()) as Record<string, unknown>);
          } catch (err) {
            this.logger.error(
              { err, offset: message.offset },
              `unreadable schema record in ${schemasTopic(this.prefix)}`,
            );
          }
          return Promise.resolve();
        },
      });
    })();
    return this.starting;
  }

  async close(): Promise<void> {
    await this.consumer?.disconnect().catch(() => undefined);
  }
}
