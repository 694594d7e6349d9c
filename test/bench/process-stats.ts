// CPU and memory of processes other than the benchmark's own (the local servers, child daemons), read from
// /proc; and waiting for a local server to go quiet before a step.

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from '../../services/core/index.js';
import { localServices } from '../support/local-services.js';

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User and system CPU seconds in a /proc stat file (of a process or of one of its threads). */
function statCpuSeconds(path: string): number {
  const stat = readFileSync(path, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** User and system CPU a process has used so far, in seconds; undefined when it is not running. */
export function cpuSecondsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    return statCpuSeconds(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds of a process's main thread and of its other threads now alive (Node workers, V8's compiler
 * and garbage-collector helpers, libuv's pool: Node names them all alike); undefined when it is not running.
 */
export function threadCpuOf(pid: number | undefined): { main: number; others: number } | undefined {
  if (pid === undefined) return undefined;
  try {
    let main = 0;
    let others = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      let seconds: number;
      try {
        seconds = statCpuSeconds(`/proc/${pid}/task/${tid}/stat`);
      } catch {
        continue; // the thread ended meanwhile
      }
      if (Number(tid) === pid) main += seconds;
      else others += seconds;
    }
    return { main, others };
  } catch {
    return undefined;
  }
}

/** Peak resident memory of a process over its life (VmHWM), in MiB. */
export function peakRssOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/** Each local server's PID file, under the servers' state directory. */
const SERVER_PID_FILES = {
  mariadb: 'mariadb/run/mariadbd.pid',
  kafka: 'kafka/kafka.pid',
  ferretdb: 'ferretdb/ferretdb.pid',
  minio: 'minio/minio.pid',
} as const;
export type Server = keyof typeof SERVER_PID_FILES;

export function serverPid(server: Server): number | undefined {
  try {
    return Number(readFileSync(join(localServices().state, SERVER_PID_FILES[server]), 'utf8').trim());
  } catch {
    return undefined;
  }
}

/** CPU seconds a local server has used so far; 0 when it is not running (or not ours). */
export function serverCpu(server: Server): number {
  return cpuSecondsOf(serverPid(server)) ?? 0;
}

/** CPU seconds each running local server has used so far; those not running (or not ours) left out. */
export function everyServerCpu(): Map<Server, number> {
  const out = new Map<Server, number>();
  for (const server of Object.keys(SERVER_PID_FILES) as Server[]) {
    const cpu = cpuSecondsOf(serverPid(server));
    if (cpu !== undefined) out.set(server, cpu);
  }
  return out;
}

/** What each local server used since `before` (from everyServerCpu), e.g. "kafka 4.1 s, mariadb 0.3 s". */
export function serverCpuSince(before: Map<Server, number>): string {
  const parts = [...everyServerCpu()]
    .map(([name, cpu]) => [name, cpu - (before.get(name) ?? cpu)] as const)
    .filter(([, used]) => used >= 0.05)
    .map(([name, used]) => `${name} ${used.toFixed(1)} s`);
  return parts.join(', ') || 'none measurable';
}

/**
 * Waits until a server has been nearly idle for a second (at most limitMs): a previous step's writes
 * (InnoDB flushing, FerretDB's SQLite, a daemon stopped in the middle of a write) would otherwise weigh on
 * the next one. `label` names the server in what is printed.
 */
export async function settle(server: Server, limitMs: number, label: string = server): Promise<void> {
  const pid = serverPid(server);
  if (pid === undefined) return;
  const started = performance.now();
  for (;;) {
    const before = cpuSecondsOf(pid);
    await sleep(1_000);
    const after = cpuSecondsOf(pid);
    if (before === undefined || after === undefined || after - before < 0.2) break;
    if (performance.now() - started > limitMs) {
      console.log(`  (${label} was still busy after ${(limitMs / 1000).toFixed(0)} s; going on anyway)`);
      return;
    }
  }
  const waited = (performance.now() - started) / 1000;
  if (waited > 1.5) console.log(`  (waited ${waited.toFixed(0)} s for ${label} to finish earlier work)`);
}
