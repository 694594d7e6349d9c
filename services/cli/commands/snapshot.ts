// `tidemark snapshot create|list|show`: synthetic snapshots of the archive.

import { Command } from 'commander';
import { describePosition, parsePosition } from '../../core/index.js';
import { formatBytes } from '../../replay/restore.js';
import type { SnapshotManifest } from '../../replay/snapshot-catalog.js';
import { createSnapshot, showSnapshot, snapshots } from '../../replay/snapshots.js';
import { collect, commandContext, logProgress, terminalProgress } from '../progress.js';

function line(s: SnapshotManifest): string {
  const rows = s.tables.reduce((n, t) => n + t.rows, 0n);
  const bytes = s.tables.reduce((n, t) => n + t.files.reduce((m, f) => m + f.bytes, 0n), 0n);
  return `${s.id}  ${describePosition(parsePosition(s.pos))}  ${new Date(Number(s.ts_ms)).toISOString()}  ${s.tables.length} tables  ${rows} rows  ${formatBytes(Number(bytes))}`;
}

const exact = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);

export function snapshotCommand(): Command {
  const cmd = new Command('snapshot').description('create, list and inspect snapshots of the archive');
  cmd
    .command('create')
    .description('fold the newest snapshot and the archived changes after it into a new snapshot')
    .requiredOption('-c, --config <file>', 'YAML configuration file (tier.cold, replay.snapshots)')
    .option('--tables <list>', 'db.table names or patterns (default: replay.snapshots.tables)', collect, [])
    .option(
      '--at <point>',
      'position or time to take it at (default: the newest point archived everywhere)',
      'latest',
    )
    .addHelpText(
      'after',
      `
Reads only the archive (never the source): the newest snapshot at or before the point, plus the change files
after it. The snapshot is written under <prefix>/snapshots/<id>/ with a manifest holding its position, time,
tables, row counts and SHA-256 of every file; restores to later points start from it.

Examples:
  tidemark snapshot create -c tidemark.yaml
  tidemark snapshot create -c tidemark.yaml --tables chat.messages --at "2026-03-01T00:00:00Z"`,
    )
    .action(async (o: { config: string; tables: string[]; at: string }) => {
      const { config, logger, tty } = commandContext(o.config, 'tidemark-snapshot');
      const progress = tty ? terminalProgress('snapshot') : logProgress(logger, 'snapshot');
      progress.start(0);
      try {
        const result = await createSnapshot({ config, logger, progress }, { tables: o.tables, at: o.at });
        progress.stop();
        process.stdout.write(
          tty
            ? `${result.created ? 'created' : 'unchanged (nothing new archived):'} ${line(result.manifest)} in ${result.seconds.toFixed(1)} s\n`
            : `${JSON.stringify({ created: result.created, seconds: result.seconds, ...result.manifest }, exact)}\n`,
        );
      } finally {
        progress.stop();
      }
    });
  cmd
    .command('list')
    .description('the snapshots in the archive, oldest position first')
    .requiredOption('-c, --config <file>', 'YAML configuration file (tier.cold)')
    .option('--json', 'one JSON object per snapshot')
    .addHelpText(
      'after',
      `
Each line: id, position, the source time it stands for, tables, rows and stored size.

Examples:
  tidemark snapshot list -c tidemark.yaml
  tidemark snapshot list -c tidemark.yaml --json | jq -r .id`,
    )
    .action(async (o: { config: string; json?: boolean }) => {
      const { config, logger } = commandContext(o.config, 'tidemark-snapshot');
      const list = await snapshots({ config, logger });
      if (list.length === 0 && !o.json) process.stdout.write('no snapshots yet (tidemark snapshot create)\n');
      for (const s of list) process.stdout.write(`${o.json ? JSON.stringify(s, exact) : line(s)}\n`);
    });
  cmd
    .command('show')
    .description('one snapshot: position, time, base, and per table its rows, files and checksums')
    .argument('<id>', 'snapshot id (see snapshot list)')
    .requiredOption('-c, --config <file>', 'YAML configuration file (tier.cold)')
    .addHelpText(
      'after',
      `
Prints the snapshot's manifest as JSON: position, time, base, and per table its schema version, rows and every
file with its size and SHA-256. Restore to exactly its point with tidemark restore --at <its position>.

Example:
  tidemark snapshot show -c tidemark.yaml 20261121T175927Z-0000000220-00000020603820`,
    )
    .action(async (id: string, o: { config: string }) => {
      const { config, logger } = commandContext(o.config, 'tidemark-snapshot');
      const s = await showSnapshot({ config, logger }, id);
      process.stdout.write(`${JSON.stringify(s, exact, 2)}\n`);
    });
  return cmd;
}
