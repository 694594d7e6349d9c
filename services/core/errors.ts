// The one error family of tidemark: a stable code, a message a person can act on, and the cause.

export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_NOT_FOUND'
  | 'POSITION_INVALID'
  | 'SOURCE_MISCONFIGURED'
  | 'SOURCE_UNREACHABLE'
  | 'KAFKA_UNREACHABLE'
  | 'KAFKA_REJECTED'
  | 'UNSUPPORTED_TYPE'
  | 'OBJECT_NOT_FOUND'
  | 'OBJECT_CORRUPT'
  | 'OBJECT_STORE_UNAVAILABLE'
  | 'KEY_MISSING'
  | 'KEY_WRONG'
  | 'EVENT_UNREADABLE'
  | 'REPLICA_UNAVAILABLE'
  /** A command-line argument is wrong (an unknown table or column, a filter that does not parse). */
  | 'BAD_ARGUMENT'
  /** The archive misses part of the history a restore needs. */
  | 'ARCHIVE_GAP'
  /** Two archive files hold the same offsets of a partition. */
  | 'ARCHIVE_OVERLAP'
  /** The archive has not reached a point it was waited for (a drill's position). */
  | 'ARCHIVE_BEHIND'
  /** The asked-for point lies outside what the archive can restore. */
  | 'OUT_OF_WINDOW'
  /** A restore target already holds data and --force was not given. */
  | 'TARGET_NOT_EMPTY'
  | 'TARGET_UNAVAILABLE'
  /** A Kafka offset beyond 2^53, which the cold archive cannot count exactly. */
  | 'OFFSET_UNSUPPORTED'
  | 'INTERNAL';

export class TidemarkError extends Error {
  override readonly name = 'TidemarkError';
  readonly code: ErrorCode;
  /** What the person should do about it, when that is not already in the message. */
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
  }

  /** The message and hint as one text, for a terminal or a log line. */
  describe(): string {
    return this.hint === undefined ? this.message : `${this.message}\n  hint: ${this.hint}`;
  }
}

export function isTidemarkError(err: unknown): err is TidemarkError {
  return err instanceof TidemarkError;
}
