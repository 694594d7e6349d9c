// Folding the files of a big table on every core: each worker thread reads and folds a share of the files
// into its own state, then hands it back, and the states merge by position (the newest change of a key wins
// whichever worker saw it). Workers get a large young generation: folding makes short-lived objects by the
// million, and that is where a small one spends its time.

import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { TableCodec, TidemarkError, type Config, type Position, type Row } from '../core/index.js';
import type { ArchiveReader, DataFileRef } from './archive-reader.js';
import type { Slot } from './keyed-state.js';
import type { Cut, Folder, RestorePlan } from './rebuild.js';

export interface FoldFile {
  ref: DataFileRef;
  fromBase: boolean;
}

export interface FoldJob {
  config: Config;
  files: FoldFile[];
  cut: Cut;
  basePos: Position | undefined;
  at: Position | undefined;
}

export type FoldMessage =
  | { kind: 'progress'; events: number; bytes: number }
  | {
      kind: 'done';
      entries: [string, Slot][];
      events: number;
      bytes: number;
      maxTsMs: number;
      newest: { pos: Position; tsMs: number; version: string; schema: Record<string, unknown> } | undefined;
    }
  | { kind: 'failed'; code: string | undefined; message: string; hint: string | undefined };

/** Rows worth the start of a worker (about 0.2 s each) per table. */
const MIN_ROWS = 200_000;

/**
 * How many workers fold a plan's tables: as configured, else one per core for big tables; none where the
 * state may spill (spilled states are not merged across threads).
 */
export function foldWorkers(plan: RestorePlan, maxKeys: number, configured: number): number {
  const rows = plan.tables.reduce((n, t) => (t.rows > n ? t.rows : n), 0n);
  if (configured === 1 || rows > BigInt(maxKeys)) return 1;
  if (configured > 1) return configured;
  return rows < BigInt(MIN_ROWS) ? 1 : Math.min(4, availableParallelism());
}

/** The worker's code: the compiled module, or (running from the TypeScript sources) tsx loading it. */
function workerEntry(): { code: string | URL; eval: boolean } {
  const js = new URL('./fold-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(js))) return { code: js, eval: false };
  const ts = new URL('./fold-worker.ts', import.meta.url).href;
  const tsx = pathToFileURL(
    createRequire(import.meta.url)
      .resolve('tsx/esm/api')
      .replace(/\.cjs$/, '.mjs'),
  ).href;
  return {
    code: `import(${JSON.stringify(tsx)}).then((m) => m.register()).then(() => import(${JSON.stringify(ts)}))`,
    eval: true,
  };
}

/** Buffers arrive from another thread as plain Uint8Arrays; rows hold Buffers. */
function reviveRow(row: Row | null): Row | null {
  if (row === null) return null;
  for (const k in row) {
    const v: unknown = row[k];
    if (ArrayBuffer.isView(v) && !Buffer.isBuffer(v)) {
      row[k] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    }
  }
  return row;
}

export async function foldInWorkers(
  files: readonly FoldFile[],
  workers: number,
  folder: Folder,
  reader: ArchiveReader,
  o: {
    config: Config;
    cut: Cut;
    basePos: Position | undefined;
    at: Position | undefined;
    progress: (events: number, bytes: number) => void;
    signal?: AbortSignal;
  },
): Promise<void> {
  // Greedy by size: each file to the least loaded worker.
  const shares: FoldFile[][] = Array.from({ length: Math.min(workers, files.length) }, () => []);
  const load = shares.map(() => 0n);
  for (const f of [...files].sort((a, b) =>
    b.ref.rows > a.ref.rows ? 1 : b.ref.rows < a.ref.rows ? -1 : 0,
  )) {
    const i = load.indexOf(load.reduce((m, x) => (x < m ? x : m)));
    shares[i]?.push(f);
    load[i] = (load[i] as bigint) + f.ref.rows;
  }
  const entry = workerEntry();
  const progress = shares.map(() => ({ events: 0, bytes: 0 }));
  const report = () =>
    o.progress(
      progress.reduce((n, p) => n + p.events, 0),
      progress.reduce((n, p) => n + p.bytes, 0),
    );
  const running: Worker[] = [];
  const abort = () => running.forEach((w) => void w.terminate());
  o.signal?.addEventListener('abort', abort);
  try {
    const results = await Promise.all(
      shares.map(
        (share, i) =>
          new Promise<Extract<FoldMessage, { kind: 'done' }>>((resolve, reject) => {
            const job: FoldJob = { config: o.config, files: share, cut: o.cut, basePos: o.basePos, at: o.at };
            const worker = new Worker(entry.code, {
              workerData: job,
              eval: entry.eval,
              resourceLimits: { maxYoungGenerationSizeMb: 96 },
            });
            running.push(worker);
            worker.on('message', (m: FoldMessage) => {
              if (m.kind === 'progress') {
                progress[i] = { events: m.events, bytes: m.bytes };
                report();
              } else if (m.kind === 'done') resolve(m);
              else
                reject(
                  new TidemarkError(
                    (m.code ?? 'INTERNAL') as never,
                    m.message,
                    m.hint ? { hint: m.hint } : {},
                  ),
                );
            });
            worker.on('error', reject);
            worker.on('exit', (code) => {
              if (code !== 0)
                reject(new TidemarkError('INTERNAL', `a fold worker stopped with code ${code}`));
            });
          }),
      ),
    );
    o.signal?.throwIfAborted();
    for (const r of results) {
      for (const [key, slot] of r.entries) {
        slot.row = reviveRow(slot.row);
        folder.state.offer(key, slot);
      }
      if (r.newest) {
        let codec = reader.codec(r.newest.version);
        if (!codec) {
          codec = TableCodec.fromSchema(r.newest.schema);
          reader.remember(codec);
        }
        folder.note(r.newest.pos, r.newest.tsMs, codec, r.events, r.maxTsMs);
      }
      reader.bytesRead += r.bytes;
    }
  } finally {
    o.signal?.removeEventListener('abort', abort);
    abort();
  }
}
