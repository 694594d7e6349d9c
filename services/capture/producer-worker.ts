// The Kafka producer thread of capture: owns the transactional producer, unpacks batches from the capture
// thread and commits each as one Kafka transaction. Runs on its own core, beside binlog decoding.

import { parentPort, workerData } from 'node:worker_threads';
import { Kafka, logLevel, type LogEntry, type Message } from 'kafkajs';
import { KeyHashPartitioner } from './partitioner.js';
import {
  chunkMessages,
  FIELDS,
  type FromProducer,
  type PackedBatch,
  type ProducerWorkerData,
  type ToProducer,
} from './producer-protocol.js';

const port = parentPort;
if (!port) throw new Error('producer-worker runs as a worker thread only');
const data = workerData as ProducerWorkerData;

const send = (message: FromProducer) => port.postMessage(message);
const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'warn',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

const kafka = new Kafka({
  clientId: data.clientId,
  brokers: data.brokers,
  logLevel: logLevel.WARN,
  logCreator:
    () =>
    ({ level, log }: LogEntry) => {
      const { message, ...extra } = log;
      // tidemark aborts a transaction whose retries ran out, so nothing partial is ever visible.
      if (message.startsWith('Limiting retries for the idempotent producer')) return;
      send({
        log: {
          level: LEVELS[level] ?? 'info',
          message,
          extra: JSON.parse(JSON.stringify(extra)) as Record<string, unknown>,
        },
      });
    },
  retry: { initialRetryTime: data.initialRetryTimeMs, retries: data.retries },
});

const producer = kafka.producer({
  transactionalId: data.transactionalId,
  idempotent: true,
  maxInFlightRequests: 1,
  createPartitioner: KeyHashPartitioner,
  transactionTimeout: 60_000,
});

/** A record packed by the capture thread (patches/kafkajs: written after its offset and time as it is). */
type PackedMessage = Message & { packedRecord: true };

function unpack(batch: PackedBatch): { topic: string; messages: Message[] }[] {
  const bytes = Buffer.from(batch.data);
  const byTopic = batch.topics.map((topic) => ({ topic, messages: [] as Message[] }));
  const ix = batch.index;
  for (let i = 0; i < ix.length; i += FIELDS) {
    const keyStart = ix[i + 1]!;
    const packedStart = ix[i + 3]!;
    // The key is for the partitioner; the packed record (from its key on) is what the batch carries.
    const message: PackedMessage = {
      key: bytes.subarray(keyStart, keyStart + ix[i + 2]!),
      value: bytes.subarray(packedStart, packedStart + ix[i + 4]!),
      packedRecord: true,
    };
    byTopic[ix[i]!]?.messages.push(message);
  }
  const plain = (list: PackedBatch['before']) =>
    list.map(({ topic, messages }) => ({
      topic,
      messages: messages.map((m) => ({
        key: m.key,
        value: typeof m.value === 'string' ? m.value : Buffer.from(m.value),
        headers: m.headers,
      })),
    }));
  return [...plain(batch.before), ...byTopic.filter((t) => t.messages.length > 0), ...plain(batch.after)];
}

async function commit(batch: PackedBatch, chunkBytes: number): Promise<void> {
  const transaction = await producer.transaction();
  try {
    for (const chunk of chunkMessages(unpack(batch), chunkBytes))
      await transaction.sendBatch({ topicMessages: chunk });
    await transaction.commit();
  } catch (err) {
    await transaction.abort().catch(() => undefined);
    throw err;
  }
}

port.on('message', (msg: ToProducer) => {
  const run = async (): Promise<void> => {
    if (msg.op === 'connect') await producer.connect();
    else if (msg.op === 'commit') await commit(msg.batch, msg.chunkBytes);
    else await producer.disconnect();
  };
  run().then(
    () => send({ id: msg.id, ok: true }),
    (err: Error) => send({ id: msg.id, ok: false, message: err.message, name: err.name }),
  );
});
