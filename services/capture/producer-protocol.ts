// What the capture thread and its Kafka producer thread exchange: a batch of records packed into one
// transferable buffer (no per-record copying between threads), and the small messages around it.

import type { Message } from 'kafkajs';

/**
 * Records of one transaction packed in `data`, described by `index`. Each is the end of its Kafka record
 * from the key on: key, value and header with their lengths, as the record batch carries them.
 */
export interface PackedBatch {
  data: ArrayBuffer;
  /** Per record: topic index, key start, key length, packed start, packed length. */
  index: Int32Array;
  topics: string[];
  /** Small records sent first (schemas) and last (checkpoint), as plain messages. */
  before: { topic: string; messages: PlainMessage[] }[];
  after: { topic: string; messages: PlainMessage[] }[];
}

export interface PlainMessage {
  key: string;
  value: Uint8Array | string;
  headers: Record<string, string>;
}

export const FIELDS = 5;

export type ToProducer =
  | { id: number; op: 'connect' }
  | { id: number; op: 'commit'; batch: PackedBatch; chunkBytes: number }
  | { id: number; op: 'disconnect' };

export type FromProducer =
  | { id: number; ok: true }
  | { id: number; ok: false; message: string; name: string }
  | { log: { level: 'error' | 'warn' | 'info' | 'debug'; message: string; extra: Record<string, unknown> } };

export interface ProducerWorkerData {
  brokers: string[];
  clientId: string;
  transactionalId: string;
  retries: number;
  initialRetryTimeMs: number;
}

/** Splits topic messages into groups of about `limit` bytes, keeping the order within each topic. */
export function chunkMessages(
  topicMessages: { topic: string; messages: Message[] }[],
  limit: number,
): { topic: string; messages: Message[] }[][] {
  const chunks: { topic: string; messages: Message[] }[][] = [];
  let current: { topic: string; messages: Message[] }[] = [];
  let bytes = 0;
  for (const { topic, messages } of topicMessages) {
    let slice: Message[] = [];
    current.push({ topic, messages: slice });
    for (const m of messages) {
      const size = messageBytes(m);
      if (bytes > 0 && bytes + size > limit) {
        chunks.push(current);
        slice = [];
        current = [{ topic, messages: slice }];
        bytes = 0;
      }
      slice.push(m);
      bytes += size;
    }
  }
  const last = current.filter((t) => t.messages.length > 0);
  if (last.length > 0) chunks.push(last);
  return chunks.map((c) => c.filter((t) => t.messages.length > 0));
}

function messageBytes(m: Message): number {
  // A packed record's value holds its key and header too: counted a little over, never under.
  let n = 64 + (m.key?.length ?? 0) + ((m.value as Buffer | null)?.length ?? 0);
  for (const [k, v] of Object.entries(m.headers ?? {})) n += k.length + (v as Buffer | string).length;
  return n;
}
