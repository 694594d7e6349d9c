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

/** TLS to a server: verified against caFile (default: the system's CAs), with a client certificate if asked. */
const tlsSchema = z.strictObject({
  /** PEM file of the CA that signed the server's certificate. */
  caFile: z.string().min(1).optional(),
  /** Client certificate and its key (PEM files), where the server requires one. */
  certFile: z.string().min(1).optional(),
  keyFile: z.string().min(1).optional(),
  /** Refuse a server whose certificate does not verify; turn off only against a test server. */
  rejectUnauthorized: z.boolean().default(true),
});

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
    /** Connect over TLS (the capture connection, the binlog stream, snapshots and drills). */
    tls: tlsSchema.optional(),
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
  /**
   * Decoded binlog rows (other events count one each) buffered before decoding pauses, so memory stays
   * bounded when Kafka is slow.
   */
  queueHighWater: z.number().int().min(2).default(2_000),
  /**
   * Binlog bytes received but not yet decoded, kept while decoding pauses, before the source socket is
   * paused too: capture decodes them as soon as the queue has room instead of waiting for the server.
   */
  readAheadBytes: z
    .number()
    .int()
    .min(0)
    .max(256 * 1024 * 1024)
    .default(16 * 1024 * 1024),
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
  /** Connect to the brokers over TLS. */
  tls: tlsSchema.optional(),
  /** SASL authentication (over TLS in production). */
  sasl: z
    .strictObject({
      mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
      username: z.string().min(1),
      password: z.string().optional(),
      passwordFile: z.string().optional(),
    })
    .transform((sasl, ctx) => ({
      mechanism: sasl.mechanism,
      username: sasl.username,
      password: secretFromFile(sasl.password, sasl.passwordFile, 'password', ctx) ?? '',
    }))
    .optional(),
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

const tablePatterns = z
  .strictObject({
    include: stringList.default(['*.*']),
    exclude: stringList.default([]),
  })
  .default({ include: ['*.*'], exclude: [] });

const hotTableSchema = z.strictObject({
  /** Keep only rows whose `column` (DATETIME, TIMESTAMP or DATE) lies within the last `days`; others are evicted. */
  window: z
    .strictObject({
      column: z.string().min(1),
      days: z.number().positive(),
    })
    .optional(),
  /** Indexes created at start, each a list of columns (ascending), e.g. [room_id, created_at]. */
  indexes: z.array(stringList.refine((l) => l.length > 0, 'an index needs at least one column')).default([]),
});

const hotSchema = z.strictObject({
  /** MongoDB connection string (credentials may come from ${VAR} references). */
  uri: z.string().regex(/^mongodb(\+srv)?:\/\//, 'write a mongodb:// or mongodb+srv:// connection string'),
  /** Database holding one collection per table, named <db>.<table>. */
  database: z.string().min(1).default('tidemark'),
  /** Per-table settings keyed by db.table: recent window and indexes. Tables not named are kept whole. */
  tables: z.record(z.string(), hotTableSchema).default({}),
  /** How often rows older than their table's window are evicted (and expired tombstones removed). */
  evictEverySeconds: z.number().min(1).default(300),
  /**
   * How long a delete's tombstone stays: as long as an older event of the row could still be read again,
   * i.e. at least the change topics' retention.ms (Kafka's default is 7 days).
   */
  tombstoneHours: z.number().min(0).default(168),
});

const coldSchema = z
  .strictObject({
    /** Where the archive lives: s3://bucket/prefix (any S3-compatible store) or dir:/absolute/path. */
    url: z.string().min(1),
    /** Key prefix inside the store under which changes/ and manifests/ are written. */
    prefix: z.string().default(''),
    s3: z
      .strictObject({
        endpoint: z.string().url().optional(),
        region: z.string().default('us-east-1'),
        accessKeyId: z.string().optional(),
        secretAccessKey: z.string().optional(),
        forcePathStyle: z.boolean().default(true),
      })
      .default({ region: 'us-east-1', forcePathStyle: true }),
    /** Avro block codec of the data files. */
    codec: z.enum(['deflate', 'null']).default('deflate'),
    /**
     * zlib level of the deflate codec: 1 (the default) costs a third of the CPU of 6 for files about a
     * tenth larger on chat data; raise it where storage matters more than archiving speed.
     */
    deflateLevel: z.number().int().min(1).max(9).default(1),
    /** A data file is closed when it holds this many events or bytes, or spans this much event time. */
    rotate: z
      .strictObject({
        maxEvents: z.number().int().min(1).default(100_000),
        maxBytes: z
          .number()
          .int()
          .min(1024)
          .default(64 * 1024 * 1024),
        maxSpanSeconds: z.number().int().min(1).max(3600).default(600),
      })
      .default({ maxEvents: 100_000, maxBytes: 64 * 1024 * 1024, maxSpanSeconds: 600 }),
    /** A file left open this long (wall clock) on a quiet table is closed where it is. */
    flushAfterSeconds: z.number().min(1).default(60),
    /** Columns whose min/max go into each manifest entry, keyed by db.table, e.g. chat.messages: [room_id]. */
    columnStats: z.record(z.string(), stringList).default({}),
    /** Client-side AES-256-GCM: `keyId` names the master key new objects use; `keys` holds every readable one. */
    encryption: z
      .strictObject({
        keyId: z.string().min(1),
        /** Each key as 64 hex / 44 base64 characters, or { file: path } to read it from a mounted secret. */
        keys: z.record(z.string(), z.union([z.string().min(1), z.strictObject({ file: z.string().min(1) })])),
      })
      .optional(),
  })
  .superRefine((cold, ctx) => {
    if (cold.encryption && !(cold.encryption.keyId in cold.encryption.keys)) {
      ctx.addIssue({
        code: 'custom',
        path: ['encryption', 'keyId'],
        message: `"${cold.encryption.keyId}" is not one of encryption.keys (${Object.keys(cold.encryption.keys).join(', ')})`,
      });
    }
  });

const tierSchema = z.strictObject({
  /** Consumer groups are <group>.hot and <group>.cold (default: <kafka.topicPrefix>.tier). */
  group: z.string().min(1).optional(),
  /** Which captured tables are tiered, as db.table patterns (default: all). */
  tables: tablePatterns,
  hot: hotSchema.optional(),
  cold: coldSchema.optional(),
  /** Bytes fetched per partition per request; bounds memory per partition. */
  maxBytesPerPartition: z
    .number()
    .int()
    .min(64 * 1024)
    .default(4 * 1024 * 1024),
  /** How often new change topics (newly captured tables) are looked for. */
  topicRefreshSeconds: z.number().min(1).default(30),
  /** A member silent this long loses its partitions to the rest of its group (Kafka allows 6–300 s by default). */
  sessionTimeoutSeconds: z.number().min(6).max(300).default(10),
  /** Backoff while a store is down, doubling from min to max; the partition's data stays in Kafka meanwhile. */
  retry: z
    .strictObject({
      minMs: z.number().int().min(10).default(500),
      maxMs: z.number().int().min(10).default(30_000),
    })
    .default({ minMs: 500, maxMs: 30_000 }),
});

const replaySchema = z.strictObject({
  /** Rows of one table held in memory during a restore before its state spills to disk. */
  maxKeysInMemory: z.number().int().min(1000).default(2_000_000),
  /** Where restore state spills to (default: the system temporary directory). */
  tmpDir: z.string().min(1).optional(),
  snapshots: z
    .strictObject({
      /** The scheduler takes a snapshot this often (hours). */
      everyHours: z.number().positive().default(24),
      /** Tables snapshotted, as db.table patterns over what the archive holds (default: all). */
      tables: tablePatterns,
      /** Rows per snapshot data file. */
      rowsPerFile: z.number().int().min(1000).default(100_000),
    })
    .default({ everyHours: 24, tables: { include: ['*.*'], exclude: [] }, rowsPerFile: 100_000 }),
  /** What `tidemark retention plan|apply` keeps; nothing is deleted unless apply is run. */
  retention: z
    .strictObject({
      /** Snapshots kept grandfather-father-son: the newest of each of the last N days, ISO weeks, months, years (-1: all). */
      snapshots: z
        .strictObject({
          /** The newest N, whatever their dates. */
          last: z.number().int().min(-1).default(3),
          daily: z.number().int().min(-1).default(30),
          weekly: z.number().int().min(-1).default(12),
          monthly: z.number().int().min(-1).default(12),
          yearly: z.number().int().min(-1).default(-1),
        })
        .default({ last: 3, daily: 30, weekly: 12, monthly: 12, yearly: -1 }),
      /** Any point of the last this many days stays restorable (change files before a snapshot covering it go). */
      changesDays: z.number().min(0).default(35),
    })
    .default({ snapshots: { last: 3, daily: 30, weekly: 12, monthly: 12, yearly: -1 }, changesDays: 35 }),
  /** The scheduler's verification: integrity of the archive and, with a source configured, a restore drill. */
  verify: z
    .strictObject({
      /** How often (hours); 0 turns scheduled verification off. */
      everyHours: z.number().min(0).default(24),
      /** Run a restore drill against the source (needs source and kafka in this configuration). */
      drill: z.boolean().default(true),
      /** Check the files written since the previous run (`new`) or every file each time (`all`). */
      integrity: z.enum(['new', 'all']).default('new'),
      /** Tables verified, as db.table patterns over what the archive holds (default: all). */
      tables: tablePatterns,
      /** How long a drill waits for the archive to reach its position (default: rotate.maxSpanSeconds + flushAfterSeconds + 60). */
      waitSeconds: z.number().positive().optional(),
    })
    .default({ everyHours: 24, drill: true, integrity: 'new', tables: { include: ['*.*'], exclude: [] } }),
});

const alertsSchema = z.strictObject({
  /** Each alert is POSTed here as JSON when it fires, while it fires (repeatMinutes) and when resolved. */
  webhook: z
    .strictObject({
      url: z.string().url(),
      /** e.g. Authorization: "Bearer ${ALERT_TOKEN}" (a ${VAR} reference keeps the secret out of the file). */
      headers: z.record(z.string(), z.string()).default({}),
      timeoutMs: z.number().int().min(100).default(5000),
      /** Retries of one notice after the first attempt, with backoff from 1 s doubling to 30 s. */
      retries: z.number().int().min(0).default(5),
    })
    .optional(),
  /** A firing alert is notified again this often (0: only when it starts and ends). */
  repeatMinutes: z.number().min(0).default(60),
  /** capture: CaptureLagging when the newest committed change is this far behind the source, or no checkpoint was committed for this long while streaming. */
  captureLagSeconds: z.number().positive().default(300),
  /** tier: ArchiveUploadFailing / HotReplicaFailing when writes to the store have failed for this long. */
  storeFailingSeconds: z.number().positive().default(120),
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
  tier: tierSchema.optional(),
  replay: replaySchema.default(replaySchema.parse({})),
  alerts: alertsSchema.default(alertsSchema.parse({})),
  log: logSchema.default({ level: 'info' }),
  http: httpSchema.default({ host: '127.0.0.1', port: 9464 }),
});

export type Config = z.output<typeof configSchema>;
export type SourceConfig = NonNullable<Config['source']>;
export type KafkaConfig = NonNullable<Config['kafka']>;
export type CaptureConfig = Config['capture'];
export type TierConfig = NonNullable<Config['tier']>;
export type HotConfig = NonNullable<TierConfig['hot']>;
export type ColdConfig = NonNullable<TierConfig['cold']>;
export type ReplayConfig = Config['replay'];
export type TlsConfig = z.output<typeof tlsSchema>;
export type AlertsSettings = Config['alerts'];

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
