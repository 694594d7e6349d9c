// The capture thread's handle on its Kafka producer thread: connect, commit packed batches, close.

import type { Worker } from 'node:worker_threads';
import { startWorker, TidemarkError, type KafkaConfig, type Logger } from '../core/index.js';
import type { FromProducer, PackedBatch, ProducerWorkerData, ToProducer } from './producer-protocol.js';

type Pending = { resolve: () => void; reject: (err: Error) => void };
type Request = ToProducer extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

/** Its heap holds at most a couple of batches; a cap keeps V8 from growing it lazily. */
function spawnWorker(data: ProducerWorkerData): Worker {
  return startWorker(import.meta.url, 'producer-worker', data, { maxOldGenerationSizeMb: 160 });
}

export class ProducerClient {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | undefined;

  constructor(options: { kafka: KafkaConfig; transactionalId: string; clientId: string; logger: Logger }) {
    const log = options.logger.child({ component: 'kafkajs' });
    this.worker = spawnWorker({
      brokers: options.kafka.brokers,
      clientId: options.clientId,
      transactionalId: options.transactionalId,
      retries: options.kafka.retry.retries,
      initialRetryTimeMs: options.kafka.retry.initialRetryTimeMs,
    });
    this.worker.on('message', (msg: FromProducer) => {
      if ('log' in msg) {
        log[msg.log.level](msg.log.extra, msg.log.message);
        return;
      }
      const waiter = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.ok) waiter?.resolve();
      else waiter?.reject(Object.assign(new Error(msg.message), { name: msg.name }));
    });
    const fail = (err: Error) => {
      this.failure ??= new TidemarkError('INTERNAL', `the Kafka producer thread stopped: ${err.message}`, {
        cause: err,
      });
      for (const waiter of this.pending.values()) waiter.reject(this.failure);
      this.pending.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
  }

  private call(request: Request, transfer: ArrayBuffer[] = []): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...request, id }, transfer);
    });
  }

  connect(): Promise<void> {
    return this.call({ op: 'connect' });
  }

  /** Commits the batch as one Kafka transaction; its buffers move to the producer thread. */
  commit(batch: PackedBatch, chunkBytes: number): Promise<void> {
    return this.call({ op: 'commit', batch, chunkBytes }, [batch.data, batch.index.buffer as ArrayBuffer]);
  }

  async close(): Promise<void> {
    await this.call({ op: 'disconnect' }).catch(() => undefined);
    await this.worker.terminate();
  }
}
