// The `tidemark` program: every subcommand, in the order `tidemark --help` lists them.

import { Command } from 'commander';
import { auditCommand } from './commands/audit.js';
import { captureCommand } from './commands/capture.js';
import { configCommand } from './commands/config.js';
import { changesCommand } from './commands/changes.js';
import { exportCommand } from './commands/export.js';
import { queryCommand } from './commands/query.js';
import { restoreCommand } from './commands/restore.js';
import { retentionCommand } from './commands/retention.js';
import { schedulerCommand } from './commands/scheduler.js';
import { snapshotCommand } from './commands/snapshot.js';
import { statusCommand } from './commands/status.js';
import { tailCommand } from './commands/tail.js';
import { tierCommand } from './commands/tier.js';
import { verifyCommand } from './commands/verify.js';

export function buildProgram(): Command {
  const program = new Command('tidemark')
    .description(
      'Stream every row change of a MySQL/MariaDB database into Kafka, keep a hot MongoDB replica and an ' +
        'Avro archive in object storage, and rebuild any table at any point in time.',
    )
    .version(process.env.npm_package_version ?? '0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      `
Every command takes -c/--config <file> (see deploy/tidemark.example.yaml) and has its own --help.

Examples:
  tidemark capture -c tidemark.yaml                      # the daemons: capture, tier, scheduler
  tidemark status -c tidemark.yaml                       # where a running deployment stands
  tidemark changes -c tidemark.yaml --tables chat.messages --from "1 hour ago" --op d
  tidemark restore -c tidemark.yaml --tables chat.messages --at <position> --to mysql://…/side_db
  tidemark verify -c tidemark.yaml --drill               # prove the archive restores
  tidemark query -c tidemark.yaml 'SELECT count(*) FROM changes."chat.messages"'`,
    );
  program.addCommand(captureCommand());
  program.addCommand(configCommand());
  program.addCommand(restoreCommand());
  program.addCommand(queryCommand());
  program.addCommand(exportCommand());
  program.addCommand(snapshotCommand());
  program.addCommand(retentionCommand());
  program.addCommand(auditCommand());
  program.addCommand(changesCommand());
  program.addCommand(schedulerCommand());
  program.addCommand(statusCommand());
  program.addCommand(tailCommand());
  program.addCommand(tierCommand());
  program.addCommand(verifyCommand());
  return program;
}
