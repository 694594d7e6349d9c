// Connection settings of the local servers for integration tests: taken from the environment when
// `make` exported them, otherwise asked from deploy/local/services.sh.

import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const servicesScript = fileURLToPath(new URL('../../deploy/local/services.sh', import.meta.url));

export interface LocalServices {
  mysql: {
    host: string;
    port: number;
    user: string;
    password: string;
    adminUser: string;
    adminPassword: string;
  };
  kafka: { brokers: string[] };
  mongodb: { uri: string };
  s3: { endpoint: string; region: string; bucket: string; accessKeyId: string; secretAccessKey: string };
  /** State directory of the local servers (data, logs, PID files). */
  state: string;
}

function readEnv(): Record<string, string> {
  if (process.env.TIDEMARK_MYSQL_PORT !== undefined) return process.env as Record<string, string>;
  const text = execFileSync(servicesScript, ['env'], { encoding: 'utf8' });
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^export ([A-Z0-9_]+)=(.*)$/.exec(line);
    if (match) env[match[1] as string] = match[2] as string;
  }
  return env;
}

let cached: LocalServices | undefined;

export function localServices(): LocalServices {
  if (cached) return cached;
  const env = readEnv();
  const need = (name: string): string => {
    const value = env[name];
    if (value === undefined || value === '') {
      throw new Error(
        `${name} is not set; start the local servers with 'make up' (deploy/local/services.sh up)`,
      );
    }
    return value;
  };
  cached = {
    mysql: {
      host: need('TIDEMARK_MYSQL_HOST'),
      port: Number(need('TIDEMARK_MYSQL_PORT')),
      user: need('TIDEMARK_MYSQL_USER'),
      password: need('TIDEMARK_MYSQL_PASSWORD'),
      adminUser: need('TIDEMARK_MYSQL_ADMIN_USER'),
      adminPassword: need('TIDEMARK_MYSQL_ADMIN_PASSWORD'),
    },
    kafka: { brokers: need('TIDEMARK_KAFKA_BROKERS').split(',') },
    mongodb: { uri: need('TIDEMARK_MONGODB_URI') },
    s3: {
      endpoint: need('TIDEMARK_S3_ENDPOINT'),
      region: need('TIDEMARK_S3_REGION'),
      bucket: need('TIDEMARK_S3_BUCKET'),
      accessKeyId: need('TIDEMARK_S3_ACCESS_KEY_ID'),
      secretAccessKey: need('TIDEMARK_S3_SECRET_ACCESS_KEY'),
    },
    state: need('TIDEMARK_LOCAL_STATE'),
  };
  return cached;
}

/** A name no earlier run used, for databases, topics, collections and object keys. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${Math.floor(Math.random() * 36 ** 4).toString(36)}`;
}

/** The local MinIO as tier.cold.s3 settings (and openObjectStore's S3 options). */
export function s3Settings() {
  const { s3 } = localServices();
  return {
    endpoint: s3.endpoint,
    region: s3.region,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    forcePathStyle: true,
  };
}
