// `tidemark status`: where a running deployment stands, read from the source, Kafka and the archive.

import { Command } from 'commander';
import { createLogger, loadConfig } from '../../core/index.js';
import { deploymentStatus, formatStatus } from '../../replay/status.js';
import { EXIT } from '../exit-codes.js';

const exact = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);

export function statusCommand(): Command {
  return new Command('status')
    .description('capture position and lag, consumer lags, last upload, snapshots and the restorable window')
    .requiredOption(
      '-c, --config <file>',
      'YAML configuration file of the deployment (source, kafka, tier, replay)',
    )
    .option('--json', 'one JSON object instead of the text report')
    .addHelpText(
      'after',
      `
Reads the state where it lives, not from the daemons: the source's binlog end (SHOW MASTER STATUS), capture's
newest checkpoint in <prefix>.checkpoints, the committed offsets of the tier groups <group>.hot and
<group>.cold against the ends of the change topics, the manifests and snapshots of the archive. Parts the
config leaves out are skipped. Group lag counts Kafka records, so a caught-up group may show one
transaction marker per partition; the cold group's lag also holds the events of files still open.

Exit codes: 0 nothing needs attention; 1 a problem is listed (a server unreachable, capture behind a source
that moved on, a gap in the archive, a snapshot older than twice its cadence); 3 the configuration is invalid.

Examples:
  tidemark status -c tidemark.yaml
  tidemark status -c tidemark.yaml --json | jq '.archive.tables[] | {table, first, last}'`,
    )
    .action(async (o: { config: string; json?: boolean }) => {
      const config = loadConfig({ file: o.config });
      const logger = createLogger({ level: 'error', name: 'tidemark-status', destination: process.stderr });
      const status = await deploymentStatus(config, logger);
      process.stdout.write(o.json ? `${JSON.stringify(status, exact)}\n` : formatStatus(status));
      if (status.problems.length > 0) process.exitCode = EXIT.FAILURE;
    });
}
