#!/usr/bin/env node
// The `tidemark` command: one thin subcommand per file under commands/, the services do the work.

import { Command } from 'commander';
import { isTidemarkError } from '../core/index.js';
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
import { EXIT } from './exit-codes.js';

export function buildProgram(): Command {
  const program = new Command('tidemark')
    .description(
      'Stream every row change of a MySQL/MariaDB database into Kafka, keep a hot MongoDB replica and an ' +
        'Avro archive in object storage, and rebuild any table at any point in time.',
    )
    .version(process.env.npm_package_version ?? '0.1.0')
    .showHelpAfterError('(run with --help for usage)');
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

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (err) {
    if (isTidemarkError(err)) {
      process.stderr.write(`tidemark: ${err.describe()}\n`);
      process.exitCode = err.code.startsWith('CONFIG')
        ? EXIT.CONFIG
        : err.code === 'BAD_ARGUMENT' || err.code === 'POSITION_INVALID'
          ? EXIT.USAGE
          : EXIT.FAILURE;
      return;
    }
    throw err;
  }
}

await main();
