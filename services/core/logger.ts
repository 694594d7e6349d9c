// The pino logger every service uses: JSON lines, secrets redacted wherever they appear in a log object.

import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/** Field names whose values never reach a log line, at any depth up to four levels. */
export const SECRET_FIELDS = [
  'password',
  'passwordFile',
  'secret',
  'secretAccessKey',
  'sessionToken',
  'token',
  'apiKey',
  'authorization',
  'masterKey',
] as const;

export const REDACTED = '[redacted]';

function redactPaths(): string[] {
  const paths: string[] = [];
  for (const field of SECRET_FIELDS) {
    for (let depth = 0; depth < 4; depth++) {
      paths.push([...Array<string>(depth).fill('*'), field].join('.'));
    }
  }
  return paths;
}

export interface LoggerSettings {
  level?: LoggerOptions['level'];
  name?: string;
  /** Where lines go; default standard output. Tests pass a stream to read them back. */
  destination?: DestinationStream;
}

interface Describable {
  name?: string;
  message?: string;
  code?: unknown;
  hint?: unknown;
  stack?: string;
  cause?: unknown;
}

/**
 * Errors as log fields: type, code, message, hint and the chain of causes (each its type, code and message),
 * and a stack only for errors tidemark did not describe itself. Driver errors (MongoDB, Kafka) carry
 * circular references to their connections that would otherwise make the whole line unreadable.
 */
export function serializeError(err: unknown, depth = 0): unknown {
  if (typeof err !== 'object' || err === null) return err;
  const e = err as Describable;
  const out: Record<string, unknown> = { type: e.name ?? err.constructor?.name, message: e.message };
  if (typeof e.code === 'string' || typeof e.code === 'number') out.code = e.code;
  if (typeof e.hint === 'string') out.hint = e.hint;
  if (e.name !== 'TidemarkError' && typeof e.stack === 'string') out.stack = e.stack;
  if (e.cause !== undefined && depth < 4) out.cause = serializeError(e.cause, depth + 1);
  return out;
}

export function createLogger({
  level = 'info',
  name = 'tidemark',
  destination,
}: LoggerSettings = {}): Logger {
  const options: LoggerOptions = {
    name,
    level,
    redact: { paths: redactPaths(), censor: REDACTED },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    serializers: { err: serializeError },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}

/** A copy of a configuration object with secret fields replaced, for printing it (e.g. `config show`). */
export function redactSecrets<T>(value: T): T {
  const secret = new Set<string>(SECRET_FIELDS);
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (typeof node === 'object' && node !== null) {
      return Object.fromEntries(
        Object.entries(node).map(([k, v]) => [k, secret.has(k) && v !== undefined ? REDACTED : walk(v)]),
      );
    }
    return node;
  };
  return walk(value) as T;
}
