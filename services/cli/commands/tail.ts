// `tidemark tail <db.table>`: print a table's change events from Kafka for a person.

import { Command } from 'commander';
import { createLogger, loadConfig, TidemarkError } from '../../core/index.js';
import { tail } from '../../capture/index.js';

export function tailCommand(): Command {
  return new Command('tail')
    .description("print a table's change events from Kafka, decoded")
    .argument('<table>', 'the table as <db>.<table>')
    .requiredOption('-c, --config <file>', 'YAML configuration file (kafka section)')
    .option('--from-beginning', 'start with the oldest event still in Kafka instead of new ones')
    .option('-n, --limit <count>', 'stop after this many events', (v) => Number(v))
    .option('--json', 'one JSON object per line (bigint as digits, bytes as 0x-hex)')
    .addHelpText(
      'after',
      `
Examples:
  tidemark tail chat.messages --config tidemark.yaml
  tidemark tail chat.users --config tidemark.yaml --from-beginning --limit 20 --json | jq .`,
    )
    .action(
      async (
        table: string,
        options: { config: string; fromBeginning?: boolean; limit?: number; json?: boolean },
      ) => {
        const config = loadConfig({ file: options.config });
        if (!config.kafka)
          throw new TidemarkError('CONFIG_INVALID', 'tail needs the kafka section in the configuration');
        const controller = new AbortController();
        process.once('SIGINT', () => controller.abort());
        await tail({
          kafka: config.kafka,
          table,
          fromBeginning: options.fromBeginning ?? false,
          limit: options.limit,
          json: options.json ?? false,
          logger: createLogger({
            level: 'warn',
            name: 'tidemark-tail',
            destination: process.stderr,
          }),
          write: (line) => process.stdout.write(`${line}\n`),
          signal: controller.signal,
        });
      },
    );
}
