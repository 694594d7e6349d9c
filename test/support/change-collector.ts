// Reads decoded change events from change topics (read_committed), for tests that check what capture wrote.

import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import type { ChangeEvent, SchemaCatalog } from '../../services/core/index.js';

export interface CollectedEvent {
  topic: string;
  partition: number;
  offset: string;
  event: ChangeEvent;
}

export class ChangeCollector {
  readonly events: CollectedEvent[] = [];
  private consumer: Consumer | undefined;
  private failure: Error | undefined;

  constructor(
    private readonly kafka: Kafka,
    private readonly catalog: SchemaCatalog,
  ) {}

  async start(topics: string[]): Promise<void> {
    const consumer = this.kafka.consumer({
      groupId: `tidemark-test-${randomUUID()}`,
      readUncommitted: false,
      maxWaitTimeInMs: 200,
    });
    this.consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({ topics, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic, partition, message }) => {
        try {
          const version = message.headers?.['tidemark.schema']?.toString() ?? '';
          const codec = await this.catalog.codecFor(version);
          this.events.push({
            topic,
            partition,
            offset: message.offset,
            event: codec.decode(message.value as Buffer),
          });
        } catch (err) {
          this.failure = err as Error;
        }
      },
    });
  }

  /** Waits until `done` holds for what was collected, or fails after timeoutMs saying what it had. */
  async waitFor(done: (events: CollectedEvent[]) => boolean, timeoutMs = 60_000): Promise<CollectedEvent[]> {
    const deadline = Date.now() + timeoutMs;
    while (!done(this.events)) {
      if (this.failure) throw this.failure;
      if (Date.now() > deadline)
        throw new Error(`timed out after ${timeoutMs} ms with ${this.events.length} events collected`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return this.events;
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }
}
