// `--to` read into a target: mongodb://…/<db>, mysql://…/<db>, dir:<path>; none given, a new MongoDB
// database named after the restore point on the hot replica's server.

import { compactUtc, TidemarkError, type Config } from '../../core/index.js';
import type { TargetPoint } from '../target-point.js';
import { DirTarget, type DirFormat } from './dir-target.js';
import { MongoTarget } from './mongo-target.js';
import { MysqlTarget } from './mysql-target.js';
import type { RestoreTarget } from './target.js';

/** `tidemark_restore_20260301_100312` for a restore to 2026-03-01T10:03:12Z. */
export function defaultDatabaseName(at: TargetPoint, startedMs: number): string {
  const ms = at.kind === 'time' ? at.ms : startedMs;
  return `tidemark_restore_${compactUtc(ms).replace('T', '_').replace('Z', '')}`;
}

/** The database a `--to` URI ends with. */
function databaseOf(to: string, example: string): string {
  const database = decodeURIComponent(new URL(to).pathname.replace(/^\//, ''));
  if (!database) {
    throw new TidemarkError('BAD_ARGUMENT', `--to ${to} names no database`, {
      hint: `end the URI with the database to restore into, e.g. ${example}`,
    });
  }
  return database;
}

export function openTarget(
  config: Config,
  to: string | undefined,
  format: DirFormat,
  at: TargetPoint,
  startedMs: number,
): RestoreTarget {
  if (to === undefined) {
    const hot = config.tier?.hot;
    if (!hot) {
      throw new TidemarkError(
        'BAD_ARGUMENT',
        'no --to given and no tier.hot MongoDB configured to restore into',
        {
          hint: 'give --to mongodb://host/db, mysql://user@host/db or dir:/path',
        },
      );
    }
    return new MongoTarget(hot.uri, defaultDatabaseName(at, startedMs), startedMs);
  }
  if (to.startsWith('dir:')) {
    const path = to.slice('dir:'.length);
    if (path === '')
      throw new TidemarkError('BAD_ARGUMENT', '--to dir: needs a path, e.g. dir:/var/restore/2026-03-01');
    return new DirTarget(path, format, startedMs);
  }
  if (/^mongodb(\+srv)?:\/\//.test(to)) {
    return new MongoTarget(to, databaseOf(to, 'mongodb://localhost:27017/restore_0301'), startedMs);
  }
  if (to.startsWith('mysql://')) {
    return new MysqlTarget(
      new URL(to),
      databaseOf(to, 'mysql://root@127.0.0.1:3306/restore_0301'),
      startedMs,
    );
  }
  throw new TidemarkError('BAD_ARGUMENT', `--to ${to} is not a place to restore into`, {
    hint: 'use mongodb://host/db, mysql://user@host/db or dir:/path',
  });
}
