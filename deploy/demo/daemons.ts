// The local servers as deploy/local/services.sh describes them, and `tidemark` daemons run as child
// processes, for `make demo` and `make run`.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'services/cli/index.ts');
const SERVICES = join(ROOT, 'deploy/local/services.sh');

export function localEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of execFileSync(SERVICES, ['env'], { encoding: 'utf8' }).split('\n')) {
    const m = /^export ([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) env[m[1] as string] = m[2] as string;
  }
  return env;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** One `tidemark <command>` daemon, its log in the work directory, its metrics on a port of its own. */
export class Daemon {
  private child: ChildProcess | undefined;
  /** Resolves with the exit code when the process ends (for whatever reason). */
  exited: Promise<number | null> | undefined;

  constructor(
    readonly command: string,
    readonly configFile: string,
    readonly port: number,
    readonly logFile: string,
  ) {}

  start(): void {
    const out = openSync(this.logFile, 'a');
    this.child = spawn(
      process.execPath,
      ['--import', 'tsx', CLI, this.command, '--config', this.configFile],
      {
        cwd: ROOT,
        stdio: ['ignore', out, out],
        // Its own metrics and health port, whatever the configuration file says.
        env: { ...process.env, FORCE_COLOR: '0', TIDEMARK__HTTP__PORT: String(this.port) },
      },
    );
    const child = this.child;
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  async metrics(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    try {
      const text = await (await fetch(`http://127.0.0.1:${this.port}/metrics`)).text();
      for (const line of text.split('\n')) {
        const m = /^([a-z_]+)(?:\{[^}]*\})? ([-0-9.e+]+)$/.exec(line);
        if (m) out.set(m[1] as string, (out.get(m[1] as string) ?? 0) + Number(m[2]));
      }
    } catch {
      // Not up yet: nothing to show.
    }
    return out;
  }

  async status(): Promise<string | undefined> {
    try {
      return ((await (await fetch(`http://127.0.0.1:${this.port}/healthz`)).json()) as { status?: string })
        .status;
    } catch {
      return undefined;
    }
  }

  /** SIGTERM: the daemon flushes, commits and checkpoints, then exits. */
  async stop(): Promise<number | null> {
    if (!this.child) return null;
    this.child.kill('SIGTERM');
    const code = await this.exited;
    this.child = undefined;
    return code ?? null;
  }
}

/** One line of how the pipeline is doing: events/s, capture lag, hot documents, archive files and bytes. */
export async function pipelineStatus(
  capture: Daemon,
  tier: Daemon,
  /** Documents in the hot replica, when the caller can count them. */
  hotDocuments: (() => Promise<number>) | undefined,
  last: { events: number; at: number },
): Promise<{ events: number; at: number; line: string }> {
  const [c, t] = await Promise.all([capture.metrics(), tier.metrics()]);
  const events = c.get('tidemark_capture_events_total') ?? 0;
  const at = Date.now();
  const rate = (events - last.events) / Math.max(0.001, (at - last.at) / 1000);
  const docs = hotDocuments ? `${await hotDocuments().catch(() => 0)} hot documents · ` : '';
  const line =
    `${Math.round(rate).toString().padStart(5)} events/s · ` +
    `lag ${(c.get('tidemark_capture_lag_seconds') ?? 0).toFixed(1)} s · ` +
    `${docs}${t.get('tidemark_tier_cold_files_total') ?? 0} archive files, ` +
    `${((t.get('tidemark_tier_cold_bytes_total') ?? 0) / 1024).toFixed(0)} KiB`;
  return { events, at, line };
}
