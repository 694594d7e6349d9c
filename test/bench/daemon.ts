// A `tidemark` daemon a benchmark runs as a child process: stopped within a grace period, its log's last
// lines for a failure message, and its files removed when it is done with.

import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { CaptureProcess } from '../support/capture-process.js';

/** SIGTERM, and SIGKILL when the process has not exited within graceMs. */
export async function stopProcess(proc: CaptureProcess, graceMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const exited = await Promise.race([
    proc.stop().then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs))),
  ]);
  clearTimeout(timer);
  if (!exited) {
    console.log(`  (tidemark ${proc.command} did not stop within ${graceMs / 1000} s of SIGTERM; killed)`);
    await proc.kill9();
  }
}

/** stopProcess(), and its working directory and config file removed (even when stopping failed). */
export async function removeProcess(proc: CaptureProcess, graceMs: number): Promise<void> {
  try {
    await stopProcess(proc, graceMs);
  } finally {
    rmSync(proc.dir, { recursive: true, force: true });
    rmSync(dirname(proc.configFile), { recursive: true, force: true });
  }
}

/** The last lines of the daemon's log, each cut to 400 characters. */
export function logTail(proc: CaptureProcess, lines = 10): string {
  try {
    return proc
      .log()
      .split('\n')
      .slice(-lines)
      .map((l) => l.slice(0, 400))
      .join('\n');
  } catch {
    return '(no log)';
  }
}
