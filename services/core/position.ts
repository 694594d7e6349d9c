// Position: the identity and total order of a change in the source's binary log.
//
// A position is (binlog file sequence, end offset of the event, row index inside the event). The offset is
// where the event ends (MySQL's end_log_pos), which is also where a reader resumes after it. Rows of a
// consistent snapshot taken at binlog position P carry offset P, so they sort after every event already
// in the snapshot and before every event written after it.

import { TidemarkError } from './errors.js';

export interface Position {
  /** Sequence number of the binlog file (mariadb-bin.000042 → 42). */
  readonly file: number;
  /** Byte offset where the event ends in that file. */
  readonly offset: number;
  /** Index of the row inside the rows event, or of the row inside a snapshot. */
  readonly row: number;
  /** Global transaction id where the server has one (MariaDB 'domain-server-seq', MySQL 'uuid:n'). */
  readonly gtid?: string;
}

const FILE_DIGITS = 10;
const OFFSET_DIGITS = 14;
const ROW_DIGITS = 12;
const SORTABLE = /^(\d{10})-(\d{14})-(\d{12})$/;
const BINLOG_NAME = /^(?<base>.+)\.(?<seq>\d+)$/;

export function comparePositions(a: Position, b: Position): number {
  return a.file - b.file || a.offset - b.offset || a.row - b.row;
}

function checkPart(name: string, value: number, digits: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value >= 10 ** digits) {
    throw new TidemarkError(
      'POSITION_INVALID',
      `position ${name} must be a whole number from 0 to ${10 ** digits - 1}, got ${value}`,
    );
  }
}

export function makePosition(file: number, offset: number, row = 0, gtid?: string): Position {
  checkPart('file', file, FILE_DIGITS);
  checkPart('offset', offset, OFFSET_DIGITS);
  checkPart('row', row, ROW_DIGITS);
  return gtid === undefined ? { file, offset, row } : { file, offset, row, gtid };
}

/**
 * The position after every event ending at `offset` of binlog file `file`, whatever its rows: what
 * `SHOW MASTER STATUS` and a consistent snapshot report, and where a reader resumes.
 */
export function positionThrough(file: number, offset: number): Position {
  return makePosition(file, offset, 10 ** ROW_DIGITS - 1);
}

/**
 * The sortable string form, e.g. `0000000042-00000000001234-000000000003`: fixed-width fields, so plain
 * string order equals position order (object keys, Kafka headers and manifest bounds rely on it).
 */
export function formatPosition(p: Position): string {
  return [
    String(p.file).padStart(FILE_DIGITS, '0'),
    String(p.offset).padStart(OFFSET_DIGITS, '0'),
    String(p.row).padStart(ROW_DIGITS, '0'),
  ].join('-');
}

/**
 * Reads a position written by a person or by formatPosition: the sortable form, or `<binlog file>:<offset>`
 * with an optional `#<row>` (e.g. `mariadb-bin.000042:1234#3`).
 */
export function parsePosition(text: string): Position {
  const trimmed = text.trim();
  const sortable = SORTABLE.exec(trimmed);
  if (sortable) {
    return makePosition(Number(sortable[1]), Number(sortable[2]), Number(sortable[3]));
  }
  const human = /^(?<file>[^:#\s]+):(?<offset>\d+)(?:#(?<row>\d+))?$/.exec(trimmed);
  if (human?.groups) {
    const { file, offset, row } = human.groups as { file: string; offset: string; row?: string };
    return makePosition(binlogSequence(file), Number(offset), row === undefined ? 0 : Number(row));
  }
  throw new TidemarkError('POSITION_INVALID', `"${text}" is not a position`, {
    hint: 'write it as <binlog file>:<offset>[#row] (e.g. mariadb-bin.000042:1234) or in the sortable form 0000000042-00000000001234-000000000000',
  });
}

/** The sequence number of a binlog file name: `mariadb-bin.000042` → 42. */
export function binlogSequence(fileName: string): number {
  const match = BINLOG_NAME.exec(fileName);
  if (!match?.groups?.seq) {
    throw new TidemarkError(
      'POSITION_INVALID',
      `"${fileName}" is not a binlog file name (expected <basename>.<number>, e.g. mariadb-bin.000042)`,
    );
  }
  return Number(match.groups.seq);
}

/** The binlog file name for a sequence number, given the server's basename and digit width. */
export function binlogFileName(basename: string, file: number, width = 6): string {
  return `${basename}.${String(file).padStart(width, '0')}`;
}

/** A position as a person reads it: `mariadb-bin.000042:1234#3`, or `42:1234#3` when the basename is unknown. */
export function describePosition(p: Position, basename?: string): string {
  const row = p.row === 0 ? '' : `#${p.row}`;
  const file = basename === undefined ? String(p.file) : binlogFileName(basename, p.file);
  return `${file}:${p.offset}${row}`;
}
