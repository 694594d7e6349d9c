// `tidemark export`: change events as Hive-partitioned Parquet, CSV or JSON Lines for other engines.

import { Command, Option } from 'commander';
import { runExport, type ExportFormat } from '../../query/export.js';
import { collect, commandContext, logProgress, terminalProgress } from '../progress.js';

export function exportCommand(): Command {
  return new Command('export')
    .description(
      'write change events as Hive-partitioned files (dt=YYYY-MM-DD) that Athena, Trino, Spark or DuckDB read',
    )
    .requiredOption('-c, --config <file>', 'YAML configuration file (tier.cold)')
    .requiredOption('--out <dir>', 'a local directory, or s3://bucket/prefix (credentials from tier.cold.s3)')
    .option('--tables <list>', 'db.table names or patterns (default: every table)', collect, [])
    .option(
      '--from <time>',
      'only change events at or after this time (ISO, no zone = UTC, or "30 days ago")',
    )
    .option('--to <time>', 'only change events at or before this time')
    .addOption(
      new Option('--format <format>', 'file format').choices(['parquet', 'csv', 'jsonl']).default('parquet'),
    )
    .option('--force', 'replace an earlier export of the same tables under --out')
    .addHelpText(
      'after',
      `
Each table lands in <out>/<db>.<table>/dt=YYYY-MM-DD/data_0.<ext>, partitioned by event day (UTC), with the
columns of changes."<db>.<table>" in tidemark query: _op, _ts, _pos, _tx, _key and the row's columns.

Examples:
  tidemark export -c tidemark.yaml --tables 'chat.*' --from 2026-01-01 --to 2026-03-31 --out /data/chat-q1
  tidemark export -c tidemark.yaml --tables chat.messages --format csv --out s3://analytics/tidemark`,
    )
    .action(async (o: Record<string, unknown>) => {
      const { config, logger, tty } = commandContext(o.config as string, 'tidemark-export');
      const progress = tty ? terminalProgress('export') : logProgress(logger, 'export');
      const summary = await runExport(
        { config, logger, progress },
        {
          tables: o.tables as string[],
          from: o.from as string | undefined,
          to: o.to as string | undefined,
          format: o.format as ExportFormat,
          out: o.out as string,
          force: o.force === true,
        },
      );
      progress.stop();
      if (!tty) {
        process.stdout.write(`${JSON.stringify(summary)}\n`);
        return;
      }
      for (const t of summary.tables) {
        process.stdout.write(
          `${t.table}: ${t.rows} changes in ${t.files} files (${t.bytes} bytes) at ${t.location}\n`,
        );
      }
      process.stdout.write(`exported in ${summary.seconds.toFixed(1)} s\n`);
    });
}
