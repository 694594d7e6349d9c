// `make run`: the pipeline (capture, tier, scheduler) in the foreground against the configured source
// until Ctrl-C, then a graceful stop: capture first (its last transactions sent and checkpointed), then the
// tier (its batches written and committed), then the scheduler.
//
//   CONFIG  the configuration file (default: .tidemark/demo/tidemark.yaml, which `make demo` writes for the
//           local servers)

import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadConfig, sleep } from '../../services/core/index.js';
import { Daemon, freePort, pipelineStatus, ROOT } from './daemons.js';

const configFile = resolve(process.env.CONFIG || join(ROOT, '.tidemark', 'demo', 'tidemark.yaml'));
if (!existsSync(configFile)) {
  process.stderr.write(
    `tidemark: no configuration at ${configFile}\n  hint: run make demo once (it writes one for the local servers), or make run CONFIG=<file>\n`,
  );
  process.exit(3);
}
// Checked before anything starts: a wrong field is named here, not in three daemon logs.
try {
  loadConfig({ file: configFile });
} catch (err) {
  process.stderr.write(`tidemark: ${(err as { describe?: () => string }).describe?.() ?? String(err)}\n`);
  process.exit(3);
}

const logDir = join(ROOT, '.tidemark', 'run');
const daemons = await Promise.all(
  ['capture', 'tier', 'scheduler'].map(
    async (command) => new Daemon(command, configFile, await freePort(), join(logDir, `${command}.log`)),
  ),
);
const [capture, tier] = daemons as [Daemon, Daemon, Daemon];
const tty = process.stdout.isTTY === true;
const write = (text: string) => process.stdout.write(text);

let stopping = false;
const stopAll = async (why: string): Promise<number> => {
  stopping = true;
  write(`${tty ? '\n' : ''}${why}: stopping capture, then tier, then scheduler …\n`);
  let worst = 0;
  for (const d of daemons) {
    const code = await d.stop();
    write(`  ${d.command} stopped${code === 0 ? '' : ` (exit code ${code})`}\n`);
    if (code !== 0 && code !== null) worst = 1;
  }
  return worst;
};

mkdirSync(logDir, { recursive: true });
for (const d of daemons) d.start();
write(
  `tidemark running with ${configFile}\n  logs in ${logDir}; metrics on ${daemons.map((d) => `${d.command} :${d.port}`).join(', ')}\n  Ctrl-C stops it\n`,
);

process.once('SIGINT', () => void stopAll('Ctrl-C').then((code) => process.exit(code)));
process.once('SIGTERM', () => void stopAll('SIGTERM').then((code) => process.exit(code)));
// A daemon that ends on its own stops the rest: the pipeline runs whole or not at all.
for (const d of daemons) {
  void d.exited?.then(async (code) => {
    if (stopping) return;
    write(`\n${d.command} exited with code ${code}; its log: ${d.logFile}\n`);
    await stopAll(`${d.command} ended`);
    process.exit(1);
  });
}

let last = { events: 0, at: Date.now(), line: '' };
let printedAt = 0;
for (;;) {
  await sleep(2000);
  if (stopping) continue;
  last = await pipelineStatus(capture, tier, undefined, last);
  if (tty) write(`\r  ${last.line}\x1b[K`);
  else if (Date.now() - printedAt >= 30_000) {
    write(`${new Date().toISOString()} ${last.line}\n`);
    printedAt = Date.now();
  }
}
