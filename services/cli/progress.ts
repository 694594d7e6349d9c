// Progress of long commands: a bar on a terminal (events, bytes, rate, ETA), JSON log lines otherwise.

import cliProgress from 'cli-progress';
import { createLogger, loadConfig, type Config, type Logger } from '../core/index.js';
import { formatBytes, type Progress } from '../replay/restore.js';

export function terminalProgress(label: string): Progress {
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} {bar} {percentage}% | {value}/{total} events | {read} | {rate} ev/s | ETA {eta_formatted} | {phase}`,
      stream: process.stderr,
      hideCursor: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = Date.now();
  let running = false;
  let phase = 'reading';
  let events = 0;
  let bytes = 0;
  const payload = () => ({
    read: formatBytes(bytes),
    rate: Math.round(events / Math.max(0.001, (Date.now() - started) / 1000)),
    phase,
  });
  return {
    start(total) {
      running = true;
      bar.start(Math.max(total, 1), 0, payload());
    },
    update(e, b) {
      events = e;
      bytes = b;
      if (running) bar.update(Math.min(e, bar.getTotal()), payload());
    },
    phase(name) {
      phase = name;
      if (running) bar.update(bar.getTotal(), payload());
    },
    stop() {
      if (running) bar.stop();
      running = false;
    },
  };
}

/** Without a terminal: a log line every few seconds and at each phase. */
export function logProgress(logger: Logger, what: string, everyMs = 5000): Progress {
  let total = 0;
  let last = 0;
  return {
    start(t) {
      total = t;
      logger.info({ total }, `${what}: started`);
    },
    update(events, bytes) {
      if (Date.now() - last < everyMs) return;
      last = Date.now();
      logger.info({ events, total, bytes }, `${what}: progress`);
    },
    phase(name) {
      logger.info({ phase: name }, `${what}: ${name}`);
    },
    stop() {},
  };
}

/** A repeatable option's values, in the order given. */
export const collect = (value: string, previous: string[]) => [...previous, value];

/**
 * The configuration and logger of a one-shot command: on a terminal only warnings reach stderr (the
 * progress bar and the summary speak), otherwise JSON logs at the configured level.
 */
export function commandContext(file: string, name: string): { config: Config; logger: Logger; tty: boolean } {
  const config = loadConfig({ file });
  const tty = process.stderr.isTTY === true;
  const logger = createLogger({ level: tty ? 'warn' : config.log.level, name, destination: process.stderr });
  return { config, logger, tty };
}
