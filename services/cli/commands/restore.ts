// `tidemark restore`: tables as they were at a point in time, into a new MongoDB or MySQL database or a
// directory of files.

import { Command, Option } from 'commander';
import {
  describePlan,
  planFor,
  runRestore,
  type RestoreRequest,
  type RestoreSummary,
} from '../../replay/restore.js';
import { collect, commandContext, logProgress, terminalProgress } from '../progress.js';

export function restoreCommand(): Command {
  return new Command('restore')
    .description('rebuild tables as they were at a point in time, from the archive (and the Kafka tail)')
    .requiredOption('-c, --config <file>', 'YAML configuration file (tier.cold says where the archive is)')
    .option('--at <point>', 'ISO-8601 time, binlog position, "15 minutes ago" or "latest"', 'latest')
    .option(
      '--tables <list>',
      'db.table names or patterns, comma-separated (default: every archived table)',
      collect,
      [],
    )
    .option(
      '--where <filter>',
      '"<column> <op> <value>" on the restored rows; repeatable (ANDed)',
      collect,
      [],
    )
    .option('--to <target>', 'mongodb://…/<db>, mysql://user:pass@host/<db> or dir:<path>')
    .addOption(
      new Option('--format <format>', 'file format for dir: targets')
        .choices(['jsonl', 'csv', 'avro'])
        .default('jsonl'),
    )
    .option('--plan', 'print what would be read (snapshot, files, Kafka ranges, size, estimate) and stop')
    .option('--force', 'replace tables the target already holds')
    .option('--allow-gaps', 'restore even where the archive misses part of the history')
    .option('--reason <text>', 'why, for the audit log in the archive (tidemark audit)')
    .option('--archive-only', 'read the archive alone, not the end of the change topics still in Kafka')
    .option(
      '--max-keys <n>',
      'rows held in memory per table before the state spills to disk (default: replay.maxKeysInMemory)',
      (v) => Number(v),
    )
    .option(
      '--tmp-dir <dir>',
      'where the state spills to (default: replay.tmpDir or the system temp directory)',
    )
    .addHelpText(
      'after',
      `
The result is exactly the source's state after the last transaction committed at or before --at: the
newest snapshot at or before it, then every archived change after it, then the changes still only in Kafka.
A target that already holds the tables is refused unless --force. Without --to, a new MongoDB database
named after the point (tidemark_restore_YYYYMMDD_HHMMSS) is created on tier.hot's server.

Times without a zone are UTC. A binlog position without #row means the state after every event ending at
that offset (what SHOW MASTER STATUS reports). Find the position of a bad transaction with
\`tidemark changes\` and restore to the position just before it.

Examples:
  tidemark restore -c tidemark.yaml --at "2026-03-01T10:03:11Z" --tables chat.messages --where "room_id = 42"
  tidemark restore -c tidemark.yaml --at "15 minutes ago" --to mysql://root@127.0.0.1:3306/side_restore
  tidemark restore -c tidemark.yaml --at mariadb-bin.000042:1234 --to dir:/tmp/restore --format csv
  tidemark restore -c tidemark.yaml --at latest --tables 'chat.*' --plan`,
    )
    .action(async (o: Record<string, unknown>) => {
      const { config, logger, tty } = commandContext(o.config as string, 'tidemark-restore');
      const req: RestoreRequest = {
        at: o.at as string,
        tables: o.tables as string[],
        where: o.where as string[],
        to: o.to as string | undefined,
        format: o.format as RestoreRequest['format'],
        force: o.force === true,
        allowGaps: o.allowGaps === true,
        archiveOnly: o.archiveOnly === true,
        maxKeys: (o.maxKeys as number | undefined) ?? config.replay.maxKeysInMemory,
        ...(typeof o.reason === 'string' ? { reason: o.reason } : {}),
        ...(o.tmpDir || config.replay.tmpDir
          ? { tmpDir: (o.tmpDir as string | undefined) ?? config.replay.tmpDir }
          : {}),
      };
      const ctx = { config, logger };
      if (o.plan) {
        const { plan } = await planFor(ctx, req);
        process.stdout.write(`${describePlan(plan, req.to ?? 'a new MongoDB database')}\n`);
        return;
      }
      const controller = new AbortController();
      process.once('SIGINT', () => controller.abort());
      const progress = tty ? terminalProgress('restore') : logProgress(logger, 'restore');
      const summary = await runRestore({ ...ctx, progress, signal: controller.signal }, req);
      process.stdout.write(tty ? describeSummary(summary) : `${JSON.stringify(summary)}\n`);
    });
}

function describeSummary(s: RestoreSummary): string {
  const lines = [
    `restored to ${s.position ?? '(nothing)'}${s.positionTime ? ` (${s.positionTime})` : ''} into ${s.target}`,
    ...(s.stoppedShortOf
      ? [`  (asked for ${s.stoppedShortOf}; without Kafka the archive is complete only up to this point)`]
      : []),
    ...s.tables.map((t) => `  ${t.table}: ${t.rows} rows from ${t.events} changes → ${t.location}`),
    `${s.events} changes in ${s.seconds.toFixed(1)} s (${s.eventsPerSecond} changes/s)`,
  ];
  return `${lines.join('\n')}\n`;
}
