// Decode workers for the change scans. DuckDB calls a scan on the JavaScript thread and wants its next chunk
// now, so a scan hands files to the workers ahead of time and takes their answers synchronously, in file
// order (receiveMessageOnPort, sleeping on a shared counter while an answer is not there yet).

import { availableParallelism } from 'node:os';
import { MessageChannel, receiveMessageOnPort, type MessagePort, type Worker } from 'node:worker_threads';
import type { Keyring } from '../core/encryption.js';
import { TidemarkError, type ErrorCode } from '../core/errors.js';
import { startWorker } from '../core/worker.js';
import type { DecodeReply, DecodeWorkerData } from './decode-worker.js';
import { FileDecoder, type DecodedFile, type DecodeJob } from './file-decoder.js';

/** Files handed to each worker ahead of the one the scan is reading. */
const AHEAD_PER_WORKER = 8;
/** How long a scan waits for one file before it gives up on a worker that stopped answering. */
const FILE_TIMEOUT_MS = 120_000;

/** How a scan gets its files decoded: ahead by workers, or right here when it asks. */
export interface ScanChannel {
  /** How many files may be out at once. */
  readonly depth: number;
  /** Sends the i-th file of the scan. */
  submit(i: number, job: DecodeJob): void;
  /** The i-th file decoded, waiting for it if needed. */
  take(i: number, name: string): DecodedFile;
  close(): void;
}

/** Decoding on the calling thread: for scans too small to be worth starting workers. */
export class LocalDecoder {
  private readonly decoder: FileDecoder;

  constructor(keyring: Keyring | undefined) {
    this.decoder = new FileDecoder(keyring);
  }

  channel(): ScanChannel {
    const jobs = new Map<number, DecodeJob>();
    return {
      depth: 1,
      submit: (i, job) => jobs.set(i, job),
      take: (i) => {
        const job = jobs.get(i) as DecodeJob;
        jobs.delete(i);
        return this.decoder.decode(job);
      },
      close: () => jobs.clear(),
    };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

export class DecodePool {
  private readonly workers: Worker[];

  constructor(keyring: Keyring | undefined, size = Math.max(1, Math.min(4, availableParallelism()))) {
    this.workers = Array.from({ length: size }, () =>
      startWorker(import.meta.url, 'decode-worker', { keyring } satisfies DecodeWorkerData),
    );
    // A worker that fails outside a job is noticed by the scan waiting on it (its thread id turns -1).
    for (const w of this.workers) w.on('error', () => undefined);
  }

  /** A private line to every worker for one scan, so scans running side by side never mix answers. */
  channel(): ScanChannel {
    return new WorkerChannel(this.workers);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

class WorkerChannel implements ScanChannel {
  private readonly ports: MessagePort[] = [];
  private readonly counters: Int32Array[] = [];

  constructor(private readonly workers: readonly Worker[]) {
    for (const worker of workers) {
      const { port1, port2 } = new MessageChannel();
      const signal = new SharedArrayBuffer(4);
      worker.postMessage({ port: port2, signal }, [port2]);
      this.ports.push(port1);
      this.counters.push(new Int32Array(signal));
    }
  }

  /** How many files may be out at once. */
  get depth(): number {
    return this.workers.length * AHEAD_PER_WORKER;
  }

  /** Sends the i-th file of the scan (files go round the workers, so answers come back in order). */
  submit(i: number, job: DecodeJob): void {
    (this.ports[i % this.ports.length] as MessagePort).postMessage(job);
  }

  /** The answer for the i-th file, waiting for it if needed. */
  take(i: number, name: string): DecodedFile {
    const w = i % this.ports.length;
    const port = this.ports[w] as MessagePort;
    const counter = this.counters[w] as Int32Array;
    const worker = this.workers[w] as Worker;
    const deadline = Date.now() + FILE_TIMEOUT_MS;
    for (;;) {
      const seen = Atomics.load(counter, 0);
      const got = receiveMessageOnPort(port);
      if (got) {
        const reply = got.message as DecodeReply;
        if (reply.ok) return reply.result;
        throw new TidemarkError(
          reply.code as ErrorCode,
          reply.message,
          reply.hint ? { hint: reply.hint } : {},
        );
      }
      if (worker.threadId === -1) {
        throw new TidemarkError('INTERNAL', `the decode worker stopped while reading ${name}`);
      }
      if (Date.now() > deadline) {
        throw new TidemarkError(
          'INTERNAL',
          `no answer from the decode worker for ${name} in ${FILE_TIMEOUT_MS / 1000} s`,
        );
      }
      Atomics.wait(counter, 0, seen, 1000);
    }
  }

  close(): void {
    for (const port of this.ports) port.close();
  }
}
