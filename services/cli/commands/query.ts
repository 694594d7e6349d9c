// `tidemark query`: SQL over the archive with DuckDB, without a running database.

import { writeSync } from 'node:fs';
import { Command, Option } from 'commander';
import { copyResult, writeResult, type OutputFormat } from '../../query/output.js';
import { describeQueryPlan, QuerySession } from '../../query/session.js';
import { commandContext, logProgress, terminalProgress } from '../progress.js';

export function queryCommand(): Command {
  return new Command('query')
    .description('run SQL over the archive: change events and tables as of a point in time')
    .argument('<sql>', 'one SELECT statement (WITH, joins, subqueries, window functions)')
    .requiredOption('-c, --config <file>', 'YAML configuration file (tier.cold)')
    .option('--from <time>', 'only change events at or after this time (ISO, no zone = UTC, or "7 days ago")')
    .option('--to <time>', 'only change events at or before this time')
    .option('--at <point>', 'the point the "<db>.<table>" tables show (time, position or latest)', 'latest')
    .addOption(
      new Option('--format <format>', 'how rows are printed')
        .choices(['table', 'csv', 'json', 'jsonl'])
        .default('table'),
    )
    .option('--out <file>', 'write the result to a .parquet, .csv, .jsonl or .json file instead')
    .option('--force', 'replace the --out file when it exists')
    .option('--explain', 'print which archive files the query would read and why the others are skipped')
    .addHelpText(
      'after',
      `
Tables:
  changes."<db>.<table>"  every change event: _op (c u d r), _ts (event time, UTC), _pos (binlog position,
                          sortable), _tx, _key and the row's columns (the before-image for deletes)
  "<db>.<table>"          the table as it was at --at, rebuilt from snapshots and changes

Only the files that can hold the answer are read: --from/--to, and WHERE conditions on _ts, _pos and the
columns with min/max in the manifests (tier.cold.columnStats) decide. --explain shows the choice.

Examples:
  tidemark query -c tidemark.yaml 'SELECT room_id, date_trunc(''day'', _ts) AS day, count(*) FROM changes."chat.messages" WHERE _op = ''c'' GROUP BY ALL ORDER BY ALL' --from 2026-01-01 --to 2026-03-31
  tidemark query -c tidemark.yaml 'SELECT _ts, _op, name, email FROM changes."chat.users" WHERE id = 7 ORDER BY _pos'
  tidemark query -c tidemark.yaml 'SELECT * FROM "chat.messages" WHERE room_id = 42' --at 2026-03-01T00:00:00Z --out room42.parquet`,
    )
    .action(async (sql: string, o: Record<string, unknown>) => {
      const { config, logger, tty } = commandContext(o.config as string, 'tidemark-query');
      const explain = o.explain === true;
      const progress = tty && !explain ? terminalProgress('query') : logProgress(logger, 'query');
      const started = Date.now();
      const session = await QuerySession.open(
        { config, logger, progress },
        { sql, from: o.from as string | undefined, to: o.to as string | undefined, at: o.at as string },
        !explain,
      );
      try {
        if (explain) {
          process.stdout.write(`${describeQueryPlan(session.plan)}\n`);
          return;
        }
        let rows: number;
        if (o.out) {
          rows = await copyResult(session, sql, o.out as string, o.force === true);
        } else {
          const write = (text: string) => writeSync(1, `${text}\n`);
          rows = (await writeResult(session, sql, o.format as OutputFormat, write)).rows;
        }
        progress.stop();
        const files = session.plan.changes.reduce((n, t) => n + t.decisions.filter((d) => d.read).length, 0);
        const summary = {
          rows,
          files,
          seconds: (Date.now() - started) / 1000,
          ...(o.out ? { out: o.out } : {}),
        };
        if (tty)
          process.stderr.write(
            `${rows} rows${o.out ? ` written to ${o.out as string}` : ''}, ${files} archive files read, ${summary.seconds.toFixed(1)} s\n`,
          );
        else logger.info(summary, 'query: done');
      } finally {
        progress.stop();
        await session.close();
      }
    });
}
