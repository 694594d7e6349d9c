// `tidemark tier`: run the hot replica and the cold archive consumers.

import { Command, Option } from 'commander';
import { loadConfig } from '../../core/index.js';
import { runTierDaemon, type TierPart } from '../../tiering/index.js';

export function tierCommand(): Command {
  return new Command('tier')
    .description('keep the hot MongoDB replica and the cold object-store archive of the change topics')
    .requiredOption('-c, --config <file>', 'YAML configuration file (kafka and tier sections)')
    .addOption(new Option('--only <part>', 'run one consumer group only').choices(['hot', 'cold']))
    .addHelpText(
      'after',
      `
Hot and cold are separate Kafka consumer groups (<tier.group>.hot, <tier.group>.cold), so an outage of
one store never stalls the other. Start several processes with the same config to share the partitions.
Runs until SIGINT/SIGTERM. Serves /metrics and /healthz on http.host:http.port.

Examples:
  tidemark tier --config tidemark.yaml
  tidemark tier --config tidemark.yaml --only cold`,
    )
    .action(async (options: { config: string; only?: TierPart }) => {
      await runTierDaemon(loadConfig({ file: options.config }), options.only ? { only: options.only } : {});
      // Stopped: whatever a client library still holds open (a consumer that left without its batch) must
      // not keep the process alive.
      process.exit(process.exitCode ?? 0);
    });
}
