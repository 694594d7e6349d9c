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

function unpack(batch: PackedBatch): { topic: string; messages: Message[] }[] {
  const bytes = Buffer.from(batch.data);
  const headers = batch.headerValues.map((v) => ({ [data.headerName]: Buffer.from(v) }));
  const byTopic = batch.topics.map((topic) => ({ topic, messages: [] as Message[] }));
  const ix = batch.index;
  for (let i = 0; i < ix.length; i += FIELDS) {
    const [t, ks, kl, vs, vl, h] = [ix[i], ix[i + 1], ix[i + 2], ix[i + 3], ix[i + 4], ix[i + 5]] as number[];
    byTopic[t as number]?.messages.push({
      key: bytes.subarray(ks, (ks as number) + (kl as number)),
      value: bytes.subarray(vs, (vs as number) + (vl as number)),
      headers: headers[h as number],
    });
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
