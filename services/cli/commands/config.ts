// `tidemark config check`: validate a configuration file and print it with secrets redacted.

import { Command } from 'commander';
import { stringify } from 'yaml';
import { loadConfig, redactSecrets } from '../../core/index.js';

export function configCommand(): Command {
  const config = new Command('config').description('inspect tidemark configuration');
  config
    .command('check')
    .description('validate a configuration (file + TIDEMARK__* environment overrides) and print the result')
    .option('-c, --config <file>', 'YAML configuration file')
    .addHelpText(
      'after',
      '\nExamples:\n  tidemark config check --config tidemark.yaml\n  TIDEMARK__KAFKA__BROKERS=127.0.0.1:9092 tidemark config check',
    )
    .action((options: { config?: string }) => {
      const loaded = loadConfig(options.config === undefined ? {} : { file: options.config });
      process.stdout.write(`# configuration is valid\n${stringify(redactSecrets(loaded))}`);
    });
  return config;
}
