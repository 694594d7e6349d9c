// `tidemark audit`: the archive's audit log — every retention delete and every restore, who, when, what, why.

import { Command } from 'commander';
import { openArchive } from '../../replay/archive-reader.js';
import { listAudit } from '../../replay/audit.js';
import { parseTargetPoint } from '../../replay/target-point.js';
import { commandContext } from '../progress.js';

export function auditCommand(): Command {
  return new Command('audit')
    .description('list the audit log in the archive: every retention delete and every restore')
    .requiredOption('-c, --config <file>', 'YAML configuration file (tier.cold)')
    .option('--from <time>', 'only records from this time on (ISO-8601 or "7 days ago")')
    .option('--json', 'one JSON object per record')
    .addHelpText(
      'after',
      `
Each record says when, the action (retention.apply, restore), who (user, host, pid, command line; set
TIDEMARK_ACTOR to name the person behind a service account), why (--reason) and what (objects deleted,
tables restored, target, position), and whether it completed.

Examples:
  tidemark audit -c tidemark.yaml --from "30 days ago"
  tidemark audit -c tidemark.yaml --json | jq 'select(.action == "restore")'`,
    )
    .action(async (o: { config: string; from?: string; json?: boolean }) => {
      const { config } = commandContext(o.config, 'tidemark-audit');
      const from = o.from ? parseTargetPoint(o.from) : undefined;
      const fromMs = from?.kind === 'time' ? from.ms : 0;
      const records = await listAudit(openArchive(config), fromMs);
      if (records.length === 0 && !o.json) process.stdout.write('no audit records\n');
      for (const r of records) {
        process.stdout.write(
          o.json
            ? `${JSON.stringify(r)}\n`
            : `${r.at}  ${r.action.padEnd(15)} ${r.outcome.padEnd(6)} ${r.actor.user}@${r.actor.host}  ${r.reason || '-'}  ${r.actor.command}\n`,
        );
      }
    });
}
