#!/usr/bin/env node
// The `tidemark` command: one thin subcommand per file under commands/, the services do the work.

import { isTidemarkError } from '../core/index.js';
import { EXIT } from './exit-codes.js';
import { buildProgram } from './program.js';

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
