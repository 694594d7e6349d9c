// `tidemark capture`: run the binlog → Kafka daemon.

import { Command } from 'commander';
import { loadConfig } from '../../core/index.js';
import { runCaptureDaemon } from '../../capture/index.js';

export function captureCommand(): Command {
  return new Command('capture')
    .description('stream every row change of the selected tables from the MySQL/MariaDB binlog into Kafka')
    .requiredOption('-c, --config <file>', 'YAML configuration file (source, kafka, capture sections)')
    .option(
      '--resnapshot',
      'ignore the checkpoint and take a new consistent snapshot (after the binlog was purged past it)',
    )
    .addHelpText(
      'after',
      `
Runs until SIGINT/SIGTERM, then commits what it read and its checkpoint. Serves /metrics and /healthz
on http.host:http.port. A second instance for the same source waits as a standby.

Examples:
  tidemark capture --config tidemark.yaml
  tidemark capture --config tidemark.yaml --resnapshot`,
    )
    .action(async (options: { config: string; resnapshot?: boolean }) => {
      await runCaptureDaemon(loadConfig({ file: options.config }), {
        resnapshot: options.resnapshot ?? false,
      });
    });
}
