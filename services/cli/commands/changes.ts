// `tidemark changes`: change events in a window, grouped by transaction, to find the one to undo.

import { Command } from 'commander';
import { createLogger, describePosition, loadConfig, parsePosition, type Op } from '../../core/index.js';
import { eventJson, eventLine } from '../../capture/tail.js';
import { listChanges } from '../../replay/changes.js';
import { collect } from '../progress.js';

export function changesCommand(): Command {
  return new Command('changes')
    .description('list or count change events in a window, grouped by source transaction')
    .requiredOption('-c, --config <file>', 'YAML configuration file (tier.cold, kafka)')
    .option('--tables <list>', 'db.table names or patterns (default: every table)', collect, [])
    .option('--from <point>', 'time or position the window starts at')
    .option('--to <point>', 'time or position the window ends at (default: now)')
    .option(
      '--where <filter>',
      '"<column> <op> <value>" on the row before or after the change; repeatable',
      collect,
      [],
    )
    .option(
      '--op <ops>',
      'only these operations, e.g. d or u,d',
      (v) => v.split(',').map((x) => x.trim()) as Op[],
    )
    .option('--count', 'print counts only')
    .option('--json', 'one JSON object per transaction')
    .option('--archive-only', 'read the archive alone, not the end of the change topics still in Kafka')
    .option('--limit <n>', 'list at most this many transactions', (v) => Number(v), 200)
    .addHelpText(
      'after',
      `
Each transaction shows its time, positions, counts per operation and the --at to restore to just before it.

Examples:
  tidemark changes -c tidemark.yaml --tables chat.messages --from "1 hour ago" --op d --count
  tidemark changes -c tidemark.yaml --tables chat.messages --from "2026-03-01T10:00:00Z" --to "2026-03-01T10:05:00Z" --where "room_id = 42"`,
    )
    .action(async (o: Record<string, unknown>) => {
      const config = loadConfig({ file: o.config as string });
      const logger = createLogger({ level: 'warn', name: 'tidemark-changes', destination: process.stderr });
      const result = await listChanges(
        { config, logger },
        {
          tables: o.tables as string[],
          from: o.from as string | undefined,
          to: o.to as string | undefined,
          where: o.where as string[],
          ops: (o.op as Op[] | undefined) ?? [],
          archiveOnly: o.archiveOnly === true,
          limit: o.count ? 0 : (o.limit as number),
        },
      );
      const write = (s: string) => process.stdout.write(`${s}\n`);
      if (o.count) {
        write(
          o.json
            ? JSON.stringify({ transactions: result.totalTransactions, events: result.totalEvents })
            : `${result.totalEvents} changes in ${result.totalTransactions} transactions`,
        );
        return;
      }
      for (const g of result.transactions) {
        if (o.json) {
          write(JSON.stringify({ ...g, events: g.events.map((e) => JSON.parse(eventJson(e)) as unknown) }));
          continue;
        }
        const counts = (['c', 'u', 'd', 'r'] as const)
          .filter((k) => g.counts[k] > 0)
          .map((k) => `${k}:${g.counts[k]}`);
        write(
          `tx ${g.tx ?? '-'}  ${new Date(g.tsMs).toISOString()}  ${describePosition(parsePosition(g.first))} … ${describePosition(parsePosition(g.last))}  ${counts.join(' ')}  ${g.tables.join(', ')}`,
        );
        write(`  restore to just before it: --at ${g.restoreBefore}`);
        for (const e of g.events.slice(0, 20)) write(`    ${eventLine(e)}`);
        if (g.events.length > 20) write(`    … ${g.events.length - 20} more`);
      }
      if (result.truncated)
        write(`(${result.totalTransactions - result.transactions.length} more transactions; raise --limit)`);
    });
}
