// `tidemark scheduler`: the daemon that takes snapshots and verifies the archive on the configured cadences.

import { Command } from 'commander';
import { loadConfig } from '../../core/index.js';
import { runScheduler } from '../../replay/scheduler.js';

export function schedulerCommand(): Command {
  return new Command('scheduler')
    .description(
      'take a synthetic snapshot every replay.snapshots.everyHours and verify the archive every replay.verify.everyHours',
    )
    .requiredOption(
      '-c, --config <file>',
      'YAML configuration file (tier.cold, replay.snapshots, replay.verify; source and kafka for drills)',
    )
    .addHelpText(
      'after',
      `
Snapshots are folded from the archive alone. Verification is what \`tidemark verify --drill\` does: the files
written since the last passing run (replay.verify.integrity: new) or all of them fetched, SHA-256 checked and
decoded, offsets checked for gaps, and, with source and kafka configured, a restore drill compared row by row
with a consistent read of the source. The first verification comes 5 minutes after start.

Runs until SIGINT/SIGTERM. Serves /metrics (tidemark_snapshot_*, tidemark_verify_*, tidemark_alert_firing)
and /healthz (unhealthy when the last snapshot or verification failed, or the newest snapshot is older than
two cadences) on http.host:http.port. Raises SnapshotOverdue and VerifyFailed (log, metric, alerts.webhook).

Example:
  tidemark scheduler --config tidemark.yaml`,
    )
    .action(async (o: { config: string }) => {
      await runScheduler(loadConfig({ file: o.config }));
    });
}
