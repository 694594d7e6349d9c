// Configuration: one YAML file, `${VAR}` references inside it, and TIDEMARK__SECTION__FIELD environment
// overrides, validated once at start with messages that name the field.

import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { TidemarkError } from './errors.js';

export const ENV_PREFIX = 'TIDEMARK__';

const port = z.number().int().min(1).max(65535);

/** A list given as YAML list, or as one comma-separated string (handy in environment overrides). */
const stringList = z.preprocess(
  (value) =>
    typeof value === 'string'
      ? value
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s.length > 0)
      : value,
  z.array(z.string().min(1)),
);

const sourceSchema = z
  .strictObject({
    host: z.string().min(1).default('127.0.0.1'),
    port: port.default(3306),
    user: z.string().min(1),
    password: z.string().optional(),
    /** Read the password from this file instead (e.g. a mounted secret). */
    passwordFile: z.string().optional(),
    /** Replication server id of this capture instance; unique among the source's replicas. */
    serverId: z
      .number()
      .int()
      .min(1)
      .max(2 ** 32 - 1),
    tables: z.strictObject({
      include: stringList.refine((l) => l.length > 0, 'name at least one db.table pattern to capture'),
      exclude: stringList.default([]),
    }),
    /** Per-table column rules, keyed by `db.table`: columns dropped or masked before anything leaves. */
    columns: z
      .record(
        z.string(),
        z.strictObject({
          exclude: stringList.default([]),
          mask: z.record(z.string(), z.enum(['hash', 'redact', 'null'])).default({}),
        }),
      )
      .default({}),
    /** Secret of the HMAC-SHA256 behind `hash` masks (or maskKeyFile). */
    maskKey: z.string().min(32, 'use a mask key of at least 32 characters').optional(),
    maskKeyFile: z.string().optional(),
  })
  .transform((source, ctx) => {
    const password = secretFromFile(source.password, source.passwordFile, 'password', ctx);
    const maskKey = secretFromFile(source.maskKey, source.maskKeyFile, 'maskKey', ctx);
    return { ...source, password, maskKey };
  });

/** A secret given inline or as a file to read (e.g. a mounted Kubernetes secret), never both. */
function secretFromFile(
  inline: string | undefined,
  file: string | undefined,
  field: string,
  ctx: z.RefinementCtx,
): string | undefined {
  if (inline !== undefined && file !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: [`${field}File`],
      message: `give ${field} or ${field}File, not both`,
    });
    return undefined;
  }
  if (file === undefined) return inline;
  try {
    return readFileSync(file, 'utf8').trimEnd();
  } catch (err) {
    ctx.addIssue({
      code: 'custom',
      path: [`${field}File`],
      message: `cannot read ${file}: ${(err as Error).message}`,
    });
    return undefined;
  }
}

const captureSchema = z.strictObject({
  /** Identity of this captured source: names its checkpoint and Kafka transactional id. */
  id: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/, 'use only letters, digits, ".", "_" and "-"')
    .optional(),
  /** Take an initial consistent snapshot of the selected tables before streaming (`initial`), or not (`never`). */
  snapshot: z.enum(['initial', 'never']).default('initial'),
  /** A Kafka transaction is committed once it holds this many events or bytes, or is this old. */
  batch: z
    .strictObject({
      maxEvents: z.number().int().min(1).default(10_000),
      maxBytes: z
        .number()
        .int()
        .min(1024)
        .default(8 * 1024 * 1024),
      lingerMs: z.number().int().min(0).default(50),
    })
    .default({ maxEvents: 10_000, maxBytes: 8 * 1024 * 1024, lingerMs: 50 }),
  /** Binlog items buffered before the source socket is paused (memory stays bounded when Kafka is slow). */
  queueHighWater: z.number().int().min(2).default(256),
  /** Heartbeat period asked of the source; no event or heartbeat for silentAfterSeconds is a stall. */
  heartbeatSeconds: z.number().min(0.1).default(5),
  silentAfterSeconds: z.number().min(1).default(30),
  /** Idle checkpoint: how often the position is saved while none of the captured tables change. */
  checkpointIntervalMs: z.number().int().min(100).default(10_000),
  /** Reconnect backoff after a failure, doubling from min to max. */
  retry: z
    .strictObject({
      minMs: z.number().int().min(10).default(500),
      maxMs: z.number().int().min(10).default(30_000),
    })
    .default({ minMs: 500, maxMs: 30_000 }),
});

const kafkaSchema = z.strictObject({
  brokers: stringList.refine((l) => l.length > 0, 'name at least one broker host:port'),
  clientId: z.string().min(1).default('tidemark'),
  /** Topics are <topicPrefix>.<db>.<table>, plus <topicPrefix>.checkpoints and <topicPrefix>.schemas. */
  topicPrefix: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/, 'use only letters, digits, ".", "_" and "-" (Kafka topic characters)')
    .default('tidemark'),
  partitions: z.number().int().min(1).default(1),
  replicationFactor: z.number().int().min(1).default(1),
  /** Retries of one Kafka request before it fails (doubling from initialRetryTimeMs); then the operation is retried from its checkpoint. */
  retry: z
    .strictObject({
      retries: z.number().int().min(0).default(8),
      initialRetryTimeMs: z.number().int().min(10).default(300),
    })
    .default({ retries: 8, initialRetryTimeMs: 300 }),
  /** max.message.bytes of the change topics tidemark creates: the largest single row change it can carry. */
  maxMessageBytes: z
    .number()
    .int()
    .min(1024 * 1024)
    .default(16 * 1024 * 1024),
});

const logSchema = z.strictObject({
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

const httpSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  /** 0 picks any free port (the log line at start names it). */
  port: z.number().int().min(0).max(65535).default(9464),
});

export const configSchema = z.strictObject({
  source: sourceSchema.optional(),
  capture: captureSchema.default(captureSchema.parse({})),
  kafka: kafkaSchema.optional(),
  log: logSchema.default({ level: 'info' }),
  http: httpSchema.default({ host: '127.0.0.1', port: 9464 }),
});

export type Config = z.output<typeof configSchema>;
export type SourceConfig = NonNullable<Config['source']>;
export type KafkaConfig = NonNullable<Config['kafka']>;
export type CaptureConfig = Config['capture'];

type Env = Readonly<Record<string, string | undefined>>;

export interface LoadConfigOptions {
  /** Path of the YAML file; omitted, the configuration comes from the environment alone. */
  file?: string;
  env?: Env;
}

/** Reads, interpolates, overrides and validates the configuration; throws TidemarkError CONFIG_*. */
export function loadConfig({ file, env = process.env }: LoadConfigOptions = {}): Config {
  const where = file ?? 'the environment';
  let raw: unknown = {};
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new TidemarkError(
        'CONFIG_NOT_FOUND',
        `cannot read config file ${file}: ${(err as Error).message}`,
        {
          cause: err,
          hint: 'pass an existing file with --config <file>; deploy/tidemark.example.yaml documents every field',
        },
      );
    }
    raw = parseYamlDocument(text, file);
  }
  const interpolated = interpolate(raw ?? {}, env, []);
  const merged = applyEnvOverrides(interpolated, env);
  const result = configSchema.safeParse(merged, {
    error: (issue) => (issue.input === undefined ? 'required, but missing' : undefined),
  });
  if (!result.success) {
    throw new TidemarkError(
      'CONFIG_INVALID',
      `invalid configuration in ${where}:\n${formatIssues(result.error)}`,
      {
        hint: `fix the field in ${where} or override it with ${ENV_PREFIX}<SECTION>__<FIELD> (e.g. ${ENV_PREFIX}SOURCE__PORT=3306)`,
      },
    );
  }
  return result.data;
}

function parseYamlDocument(text: string, file: string): unknown {
  try {
    return parseYaml(text, { prettyErrors: true });
  } catch (err) {
    throw new TidemarkError(
      'CONFIG_INVALID',
      `config file ${file} is not valid YAML: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.length === 0 ? '(top level)' : issue.path.map(String).join('.');
      return `  - ${path}: ${issue.message}`;
    })
    .join('\n');
}

const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replaces `${VAR}` and `${VAR:-default}` in every string value; an unset variable names its field. */
function interpolate(value: unknown, env: Env, path: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(REFERENCE, (_match, name: string, fallback: string | undefined) => {
      const found = env[name];
      if (found !== undefined) return found;
      if (fallback !== undefined) return fallback;
      throw new TidemarkError(
        'CONFIG_INVALID',
        `config field ${path.join('.')} refers to the environment variable ${name}, which is not set`,
        { hint: `export ${name}=… or write \${${name}:-default} in the file` },
      );
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => interpolate(item, env, [...path, String(i)]));
  if (isPlainObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env, [...path, k])]));
  }
  return value;
}

/** TIDEMARK__SOURCE__SERVER_ID=7 sets source.serverId to 7; values are read as YAML scalars or lists. */
function applyEnvOverrides(base: unknown, env: Env): unknown {
  const root: Record<string, unknown> = isPlainObject(base) ? structuredClone(base) : {};
  const names = Object.keys(env)
    .filter((name) => name.startsWith(ENV_PREFIX))
    .sort();
  for (const name of names) {
    const text = env[name];
    if (text === undefined) continue;
    const path = name.slice(ENV_PREFIX.length).split('__').map(envSegmentToKey);
    if (path.some((segment) => segment.length === 0)) {
      throw new TidemarkError('CONFIG_INVALID', `environment variable ${name} has an empty path segment`, {
        hint: `write it as ${ENV_PREFIX}SECTION__FIELD, e.g. ${ENV_PREFIX}KAFKA__BROKERS`,
      });
    }
    setPath(root, path, parseEnvValue(text));
  }
  return root;
}

function envSegmentToKey(segment: string): string {
  return segment.toLowerCase().replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function parseEnvValue(text: string): unknown {
  try {
    const parsed: unknown = parseYaml(text);
    return parsed === null ? text : parsed;
  } catch {
    return text;
  }
}

function setPath(root: Record<string, unknown>, path: string[], value: unknown): void {
  let node = root;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (!isPlainObject(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
