// `tidemark scheduler`: the daemon that takes snapshots on the configured cadence.

import { Command } from 'commander';
import { loadConfig } from '../../core/index.js';
import { runScheduler } from '../../replay/scheduler.js';

export function schedulerCommand(): Command {
  return new Command('scheduler')
    .description('take a synthetic snapshot every replay.snapshots.everyHours, from the archive alone')
    .requiredOption('-c, --config <file>', 'YAML configuration file (tier.cold, replay.snapshots)')
    .addHelpText(
      'after',
      `
Runs until SIGINT/SIGTERM. Serves /metrics (tidemark_snapshot_*) and /healthz (unhealthy when the last
attempt failed or the newest snapshot is older than two cadences) on http.host:http.port.

Example:
  tidemark scheduler --config tidemark.yaml`,
    )
    .action(async (o: { config: string }) => {
      await runScheduler(loadConfig({ file: o.config }));
    });
}
