// The audit log in the archive: every delete (retention) and every restore leaves one JSON object under
// <prefix>/audit/dt=YYYY-MM-DD/, saying who (user, host, command), when, what and why. Objects are written
// once and never changed, so the log lives as long as the archive and can be listed by day.

import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { compactUtc } from '../core/index.js';
import { archiveKey, type Archive } from './archive-reader.js';

export interface AuditActor {
  user: string;
  host: string;
  pid: number;
  /** The command line, as given (tidemark never puts a secret on it). */
  command: string;
}

export interface AuditRecord {
  at: string;
  action: 'retention.apply' | 'restore';
  actor: AuditActor;
  reason: string;
  /** Whether the action completed; a failed restore is recorded with its error. */
  outcome: 'done' | 'failed';
  error?: string;
  details: Record<string, unknown>;
}

/** Who runs this process, for the audit log (TIDEMARK_ACTOR names a person behind a service account). */
export function currentActor(argv: readonly string[] = process.argv): AuditActor {
  let user = process.env.TIDEMARK_ACTOR ?? '';
  if (!user) {
    try {
      user = userInfo().username;
    } catch {
      user = `uid ${process.getuid?.() ?? '?'}`;
    }
  }
  return {
    user,
    host: hostname(),
    pid: process.pid,
    command: ['tidemark', ...argv.slice(2)].join(' '),
  };
}

export async function writeAudit(
  archive: Archive,
  record: Omit<AuditRecord, 'at' | 'outcome'> & { outcome?: AuditRecord['outcome'] },
  nowMs = Date.now(),
): Promise<string> {
  const full: AuditRecord = { at: new Date(nowMs).toISOString(), outcome: 'done', ...record };
  const day = full.at.slice(0, 10);
  const key = archiveKey(
    archive,
    'audit',
    `dt=${day}`,
    `${compactUtc(nowMs)}-${record.action}-${randomBytes(4).toString('hex')}.json`,
  );
  await archive.store.put(key, Buffer.from(`${JSON.stringify(full, null, 2)}\n`));
  return key;
}

/** Audit records, oldest first, optionally from a time on. */
export async function listAudit(archive: Archive, fromMs = 0): Promise<(AuditRecord & { key: string })[]> {
  const out: (AuditRecord & { key: string })[] = [];
  const fromDay = new Date(fromMs).toISOString().slice(0, 10);
  for await (const info of archive.store.list(`${archiveKey(archive, 'audit')}/`)) {
    const day = /dt=(\d{4}-\d\d-\d\d)\//.exec(info.key)?.[1];
    if (day !== undefined && day < fromDay) continue;
    const record = JSON.parse((await archive.store.get(info.key)).toString('utf8')) as AuditRecord;
    if (Date.parse(record.at) >= fromMs) out.push({ ...record, key: info.key });
  }
  return out.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
}
