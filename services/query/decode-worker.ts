// A decode worker: takes files to decode on the ports scans attach, answers each with its columns (or the
// error), then bumps the port's shared counter so a scan waiting synchronously wakes up.

import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import type { Keyring } from '../core/encryption.js';
import { TidemarkError } from '../core/errors.js';
import { FileDecoder, transferables, type DecodeJob } from './file-decoder.js';

export interface DecodeWorkerData {
  /** The archive's keys (their bytes arrive as plain Uint8Arrays). */
  keyring: Keyring | undefined;
}

export interface Attach {
  port: MessagePort;
  signal: SharedArrayBuffer;
}

export type DecodeReply =
  | { ok: true; result: ReturnType<FileDecoder['decode']> }
  | { ok: false; code: string; message: string; hint: string | undefined };

const given = (workerData as DecodeWorkerData).keyring;
const asKey = (k: Keyring['current']) => ({ ...k, key: Buffer.from(k.key) });
const decoder = new FileDecoder(given && { current: asKey(given.current), all: given.all.map(asKey) });

parentPort?.on('message', ({ port, signal }: Attach) => {
  const counter = new Int32Array(signal);
  port.on('message', (job: DecodeJob) => {
    let reply: DecodeReply;
    try {
      reply = { ok: true, result: decoder.decode(job) };
    } catch (err) {
      reply =
        err instanceof TidemarkError
          ? { ok: false, code: err.code, message: err.message, hint: err.hint }
          : { ok: false, code: 'INTERNAL', message: (err as Error).message, hint: undefined };
    }
    port.postMessage(reply, reply.ok ? transferables(reply.result) : []);
    Atomics.add(counter, 0, 1);
    Atomics.notify(counter, 0);
  });
});
