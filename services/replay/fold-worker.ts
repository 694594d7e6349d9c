// A fold worker thread: reads its share of a table's files and folds them into its own state (see
// fold-workers.ts), then sends the state back.

import { parentPort, workerData } from 'node:worker_threads';
import { isTidemarkError } from '../core/index.js';
import { ArchiveReader, openArchive } from './archive-reader.js';
import type { FoldJob, FoldMessage } from './fold-workers.js';
import { KeyedState } from './keyed-state.js';
import { Folder } from './rebuild.js';

const job = workerData as FoldJob;
const post = (m: FoldMessage) => parentPort?.postMessage(m);

try {
  const reader = new ArchiveReader(openArchive(job.config));
  const folder = new Folder(new KeyedState({ maxKeys: Number.MAX_SAFE_INTEGER }), {
    cut: job.cut,
    basePos: job.basePos,
    at: job.at,
  });
  for (const f of job.files) {
    await reader.forEach(f.ref, (e, codec) => folder.fold(codec, e, f.fromBase));
    post({ kind: 'progress', events: folder.events, bytes: reader.bytesRead });
  }
  post({
    kind: 'done',
    entries: [...folder.state.entries()],
    events: folder.events,
    bytes: reader.bytesRead,
    maxTsMs: folder.maxTsMs,
    newest:
      folder.newest && folder.codec && folder.restoredTo
        ? {
            pos: folder.newest,
            tsMs: folder.restoredTo.tsMs,
            version: folder.codec.version,
            schema: folder.codec.schema,
          }
        : undefined,
  });
} catch (err) {
  post({
    kind: 'failed',
    code: isTidemarkError(err) ? err.code : undefined,
    message: (err as Error).message,
    hint: isTidemarkError(err) ? err.hint : undefined,
  });
}
