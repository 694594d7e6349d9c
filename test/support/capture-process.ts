// A `tidemark` daemon (capture, tier) as a real child process, for tests that kill it with SIGKILL or stop it
// with SIGTERM.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { freePort } from '../../deploy/demo/daemons.js';

const cli = fileURLToPath(new URL('../../services/cli/index.ts', import.meta.url));
/** The built CLI (`make build`), as the package's `tidemark` bin runs it. */
export const builtCli = fileURLToPath(new URL('../../dist/services/cli/index.js', import.meta.url));

export { freePort };

export interface Health {
  healthy: boolean;
  status: string;
  details?: { checkpoint?: { phase: string; binlogFile: string; binlogOffset: number } };
}

export class CaptureProcess {
  readonly dir = mkdtempSync(join(tmpdir(), 'tidemark-capture-'));
  readonly logFile = join(this.dir, 'daemon.log');
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;
  starts = 0;

  private constructor(
    readonly configFile: string,
    readonly port: number,
    readonly command: string,
    private readonly built: boolean,
  ) {}

  /** `built`: run dist/ (compiled by `make build`) instead of the TypeScript sources. */
  static async create(
    raw: Record<string, unknown>,
    command = 'capture',
    { built = false }: { built?: boolean } = {},
  ): Promise<CaptureProcess> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-config-'));
    const configFile = join(dir, 'tidemark.yaml');
    writeFileSync(
      configFile,
      stringify({ ...raw, http: { host: '127.0.0.1', port }, log: { level: 'info' } }),
    );
    return new CaptureProcess(configFile, port, command, built);
  }

  start(extraArgs: string[] = []): void {
    const out = openSync(this.logFile, 'a');
    this.child = spawn(
      process.execPath,
      [
        ...(this.built ? [builtCli] : ['--import', 'tsx', cli]),
        this.command,
        '--config',
        this.configFile,
        ...extraArgs,
      ],
      {
        stdio: ['ignore', out, out],
        // The heap cap the README recommends for the capture daemon: V8 otherwise grows lazily past it.
        env: {
          ...process.env,
          FORCE_COLOR: '0',
          NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-old-space-size=256`.trim(),
        },
      },
    );
    const child = this.child;
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    this.starts++;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async kill9(): Promise<void> {
    this.child?.kill('SIGKILL');
    await this.exited;
    this.child = undefined;
  }

  /** SIGTERM and wait for the graceful exit; resolves to the exit code. */
  async stop(): Promise<number | null> {
    if (!this.child) return null;
    this.child.kill('SIGTERM');
    const code = (await this.exited) ?? null;
    this.child = undefined;
    return code;
  }

  async health(): Promise<Health | undefined> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.port}/healthz`);
      return (await res.json()) as Health;
    } catch {
      return undefined;
    }
  }

  async waitForStatus(status: string, timeoutMs = 60_000): Promise<Health> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const h = await this.health();
      if (h?.status === status) return h;
      if (Date.now() > deadline) {
        throw new Error(
          `${this.command} did not reach status ${status} within ${timeoutMs} ms (last: ${h?.status}); log: ${this.logFile}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Resident memory of the process in MiB, from /proc. */
  rssMiB(): number {
    if (!this.child?.pid) return 0;
    const status = readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return kb / 1024;
  }

  log(): string {
    return readFileSync(this.logFile, 'utf8');
  }
}
