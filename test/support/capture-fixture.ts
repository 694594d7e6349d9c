// A database on the local MariaDB with SELECT granted to the capture user, and a capture configuration
// pointing at it with its own topic prefix, so tests never see each other's data.

import mysql from 'mysql2/promise';
import { configSchema, type Config } from '../../services/core/index.js';
import { localServices, uniqueName } from './local-services.js';

export interface CaptureFixture {
  db: string;
  prefix: string;
  admin: mysql.Connection;
  config: Config;
  /** The configuration as written by a person (before defaults), for a YAML file. */
  raw: Record<string, unknown>;
  /** A new admin connection, after the server restarted. */
  reconnect(): Promise<void>;
  drop(): Promise<void>;
}

export async function captureFixture(options: {
  tables: string[];
  configure?: (c: Record<string, unknown>, db: string) => void;
}): Promise<CaptureFixture> {
  const s = localServices();
  const db = uniqueName('tm_cap');
  const prefix = uniqueName('tmtest');
  const connect = () =>
    mysql.createConnection({
      host: s.mysql.host,
      port: s.mysql.port,
      user: s.mysql.adminUser,
      password: s.mysql.adminPassword,
      database: 'mysql',
      multipleStatements: true,
      charset: 'utf8mb4',
    });
  const admin = await connect();
  await admin.query(`CREATE DATABASE \`${db}\` CHARACTER SET utf8mb4`);
  await admin.query(`USE \`${db}\``);
  for (const ddl of options.tables) await admin.query(ddl);
  await admin.query(`GRANT SELECT ON \`${db}\`.* TO '${s.mysql.user}'@'127.0.0.1'`);
  const raw: Record<string, unknown> = {
    source: {
      host: s.mysql.host,
      port: s.mysql.port,
      user: s.mysql.user,
      password: s.mysql.password,
      serverId: 10_000 + Math.floor(Math.random() * 50_000),
      tables: { include: [`${db}.*`] },
    },
    kafka: { brokers: s.kafka.brokers, topicPrefix: prefix },
    capture: { id: prefix, heartbeatSeconds: 1, checkpointIntervalMs: 500, batch: { lingerMs: 20 } },
    log: { level: process.env.TIDEMARK_TEST_LOG ?? 'warn' },
    http: { port: 0 },
  };
  options.configure?.(raw, db);
  const fixture: CaptureFixture = {
    db,
    prefix,
    admin,
    config: configSchema.parse(raw),
    raw,
    reconnect: async () => {
      await fixture.admin.end().catch(() => undefined);
      fixture.admin = await connect();
      await fixture.admin.query(`USE \`${db}\``);
    },
    drop: async () => {
      await fixture.admin.query(`DROP DATABASE IF EXISTS \`${db}\``);
      await fixture.admin.end();
    },
  };
  return fixture;
}
