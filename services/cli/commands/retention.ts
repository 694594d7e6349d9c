// `tidemark retention plan|apply`: what the retention policy removes from the archive, and removing it.

import { Command } from 'commander';
import { openArchive } from '../../replay/archive-reader.js';
import { currentActor } from '../../replay/audit.js';
import {
  applyRetention,
  formatRetentionPlan,
  planRetention,
  policyFromConfig,
  type RetentionPlan,
} from '../../replay/retention.js';
import { commandContext } from '../progress.js';

const exact = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);

/** The plan without every manifest entry (counts and ranges are what a person or a script needs). */
function planJson(plan: RetentionPlan): string {
  return JSON.stringify(
    {
      ...plan,
      tables: plan.tables.map(({ remove, removeManifests: _m, ...t }) => ({
        ...t,
        removeFiles: remove.length,
        removeBytes: remove.reduce((n, e) => n + Number(e.bytes), 0),
        removeObjects: remove.map((e) => e.object_key),
      })),
    },
    exact,
  );
}

const POLICY_HELP = `
The policy is replay.retention in the configuration:
  snapshots: { last: 3, daily: 30, weekly: 12, monthly: 12, yearly: -1 }
      the 3 newest, and the newest snapshot of each of the last 30 days, 12 ISO weeks, 12 months, and of
      every year (-1: all)
  changesDays: 35                                                  every point of the last 35 days stays restorable
The newest snapshot always stays, and so does, per table, the newest snapshot at or before the window's start:
point-in-time restores start from it. A change file goes only when it lies wholly before that snapshot, and per
partition only a prefix goes, so the history that remains is contiguous. Older kept snapshots stay restorable at
their own point (tidemark restore --at <snapshot position>).`;

export function retentionCommand(): Command {
  const cmd = new Command('retention').description(
    'plan or apply the retention policy: snapshots grandfather-father-son, change files for a restore window',
  );
  cmd
    .command('plan')
    .description('list exactly what apply would delete, and the restore window that would remain')
    .requiredOption('-c, --config <file>', 'YAML configuration file (tier.cold, replay.retention)')
    .option('--verbose', 'also list every snapshot kept, with the rule that keeps it')
    .option('--json', 'the plan as one JSON object')
    .addHelpText(
      'after',
      `${POLICY_HELP}

Examples:
  tidemark retention plan -c tidemark.yaml
  tidemark retention plan -c tidemark.yaml --json | jq '.tables[] | {table, removeFiles, windowFrom}'`,
    )
    .action(async (o: { config: string; verbose?: boolean; json?: boolean }) => {
      const { config } = commandContext(o.config, 'tidemark-retention');
      const plan = await planRetention(openArchive(config), policyFromConfig(config));
      process.stdout.write(o.json ? `${planJson(plan)}\n` : formatRetentionPlan(plan, o.verbose === true));
    });
  cmd
    .command('apply')
    .description('delete what the plan lists (and nothing else), recorded in the archive audit log')
    .requiredOption('-c, --config <file>', 'YAML configuration file (tier.cold, replay.retention)')
    .option('--reason <text>', 'why, for the audit log', 'retention policy')
    .option('--json', 'the result as one JSON object')
    .addHelpText(
      'after',
      `${POLICY_HELP}

Deletes a snapshot's manifest before its files and a change file's manifest entry before the file, so an
interrupted run leaves only objects nothing refers to. The audit record (who, when, what, why) goes under
<prefix>/audit/; see tidemark audit.

Examples:
  tidemark retention apply -c tidemark.yaml
  tidemark retention apply -c tidemark.yaml --reason "ticket OPS-123: shorten the window to 14 days"`,
    )
    .action(async (o: { config: string; reason: string; json?: boolean }) => {
      const { config } = commandContext(o.config, 'tidemark-retention');
      const archive = openArchive(config);
      const plan = await planRetention(archive, policyFromConfig(config));
      const result = await applyRetention(archive, plan, currentActor(), o.reason);
      process.stdout.write(
        o.json
          ? `${JSON.stringify({ deletedObjects: result.deletedObjects, audit: result.auditKey, plan: JSON.parse(planJson(plan)) as unknown })}\n`
          : `${formatRetentionPlan(plan)}\ndeleted ${result.deletedObjects} objects; recorded in ${result.auditKey}\n`,
      );
    });
  return cmd;
}
