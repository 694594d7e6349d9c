// `tidemark verify`: the archive checked file by file, and with --drill restored and compared to the source.

import cliProgress from 'cli-progress';
import { Command } from 'commander';
import { formatVerify, runVerify, type VerifyProgress } from '../../replay/verify.js';
import { EXIT } from '../exit-codes.js';
import { collect, commandContext } from '../progress.js';

const exact = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);

function fileBar(): VerifyProgress & { stop(): void } {
  const bar = new cliProgress.SingleBar(
    {
      format: 'verify {bar} {value}/{total} files | ETA {eta_formatted}',
      stream: process.stderr,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let running = false;
  return {
    start(total) {
      running = true;
      bar.start(Math.max(1, total), 0);
    },
    update(files) {
      if (running) bar.update(files);
    },
    stop() {
      if (running) bar.stop();
      running = false;
    },
  };
}

export function verifyCommand(): Command {
  return new Command('verify')
    .description(
      'check every archived object against its manifest, and with --drill prove a restore equals the source',
    )
    .requiredOption(
      '-c, --config <file>',
      'YAML configuration file (tier.cold; with --drill also source and kafka)',
    )
    .option('--tables <list>', 'db.table names or patterns (default: every archived table)', collect, [])
    .option('--drill', 'also run a restore drill against the source')
    .option('--no-integrity', 'skip the object-by-object check (with --drill: only the drill)')
    .option(
      '--wait <seconds>',
      'how long the drill waits for the archive to reach its position (default: tier.cold.rotate.maxSpanSeconds + flushAfterSeconds + 60)',
      (v) => Number(v),
    )
    .option('--json', 'one JSON object instead of the text report')
    .addHelpText(
      'after',
      `
Integrity: every change file and snapshot file is fetched, its SHA-256 compared with its manifest, decrypted
with the configured keys and decoded record by record (count, positions and times inside the manifest's
ranges). Per partition the change files must follow each other offset by offset, from offset 0 or from a
snapshot that covers what came before, and nothing may have left Kafka before it was archived.

Drill: a consistent read of the source at a known binlog position (MariaDB: no lock; MySQL: a brief global
read lock, as capture's snapshot), a wait until the archive holds every change up to it, a restore of the
archive alone (snapshots and change files) to that position, and a comparison of every row's hash. Masked
and excluded columns are treated as capture treats them. Rows that differ are named by key and column.

Exit codes: 0 passed; 1 a problem was found (each is listed); 3 the configuration is invalid.
The scheduler runs the same on a cadence (replay.verify) and exports tidemark_verify_* metrics.

Examples:
  tidemark verify -c tidemark.yaml
  tidemark verify -c tidemark.yaml --drill --tables 'chat.*'
  tidemark verify -c tidemark.yaml --drill --no-integrity --wait 900 --json`,
    )
    .action(
      async (o: {
        config: string;
        tables: string[];
        drill?: boolean;
        integrity: boolean;
        wait?: number;
        json?: boolean;
      }) => {
        const { config, logger, tty } = commandContext(o.config, 'tidemark-verify');
        const bar = tty && !o.json ? fileBar() : undefined;
        try {
          const report = await runVerify(
            { config, logger },
            {
              tables: o.tables,
              integrity: o.integrity,
              drill: o.drill === true,
              ...(o.wait !== undefined ? { waitSeconds: o.wait } : {}),
            },
            bar,
          );
          bar?.stop();
          const paint = (kind: 'ok' | 'bad', s: string) =>
            tty ? `\x1b[${kind === 'ok' ? 32 : 31}m${s}\x1b[0m` : s;
          process.stdout.write(o.json ? `${JSON.stringify(report, exact)}\n` : formatVerify(report, paint));
          if (!report.passed) process.exitCode = EXIT.FAILURE;
        } finally {
          bar?.stop();
        }
      },
    );
}
