// `make demo`: tidemark's whole job on the local servers, start to finish. A chat schema in MariaDB, the
// capture, tier and scheduler daemons running while live chat traffic plays, then the classic accident (a
// room's messages deleted, every user profile overwritten), the bad transactions found with
// `tidemark changes`, both tables restored to the position just before them into a side database, and
// the restored rows checked against the rows the source had before the accident.
//
//   DURATION  seconds of live traffic before the accident (default 30)
//   RATE      row changes per second of that traffic (default 200)

import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MongoClient } from 'mongodb';
import mysql from 'mysql2/promise';
import { stringify } from 'yaml';
import {
  binlogFileName,
  configSchema,
  createLogger,
  parsePosition,
  positionThrough,
  sleep,
} from '../../services/core/index.js';
import { listChanges, type TransactionGroup } from '../../services/replay/changes.js';
import { runRestore } from '../../services/replay/restore.js';
import { formatVerify, runVerify } from '../../services/replay/verify.js';
import { deploymentStatus, formatStatus, type DeploymentStatus } from '../../services/replay/status.js';
import { Daemon, freePort, localEnv, pipelineStatus, ROOT } from './daemons.js';

const SOURCE_DB = 'tidemark_demo';
const RESTORED_DB = 'tidemark_demo_restored';

export interface DemoOptions {
  durationSeconds: number;
  rate: number;
  /** Where the demo keeps its configuration and the daemons' logs. */
  workDir: string;
  write: (text: string) => void;
  /** A terminal: a live status line, colours. */
  tty: boolean;
}

export interface DemoResult {
  matched: boolean;
  restored: { messages: number; users: number };
  steps: { name: string; seconds: number }[];
  /** `tidemark status` taken while the pipeline ran, after the restore. */
  status: DeploymentStatus;
  /** `tidemark verify --drill` passed on the running pipeline. */
  verified: boolean;
}

// --- The chat schema and its traffic -------------------------------------------------------------------------

const SCHEMA = [
  `CREATE TABLE users (
     id INT PRIMARY KEY, name VARCHAR(80) NOT NULL, email VARCHAR(120) NOT NULL, bio TEXT NULL,
     karma BIGINT NOT NULL DEFAULT 0, created_at DATETIME(6) NOT NULL)`,
  `CREATE TABLE rooms (id INT PRIMARY KEY, name VARCHAR(80) NOT NULL, topic VARCHAR(200) NULL, created_at DATETIME(6) NOT NULL)`,
  `CREATE TABLE room_members (
     room_id INT NOT NULL, user_id INT NOT NULL, role ENUM('owner','moderator','member') NOT NULL,
     joined_at DATETIME(6) NOT NULL, PRIMARY KEY (room_id, user_id))`,
  `CREATE TABLE messages (
     id BIGINT UNSIGNED PRIMARY KEY, room_id INT NOT NULL, user_id INT NOT NULL, body TEXT NOT NULL,
     reactions JSON NULL, edited_at DATETIME(6) NULL, deleted_at DATETIME(6) NULL, created_at DATETIME(6) NOT NULL,
     KEY (room_id, created_at))`,
];

const ROOMS = [
  'general',
  'calculus-101',
  'physics-lab',
  '中文角',
  'study-group',
  'announcements',
  'office-hours',
  'random',
];
const LINES = [
  'has anyone started the problem set? I am stuck on question 3',
  '今天的作业是第三章的练习题，明天上课前交',
  'slides are up on the course page 📎',
  'the lab moved to room 204 this week 🧪',
  '谢谢老师！这个解释很清楚 🙏',
  'quiz on Thursday covers weeks 3 to 5 ✏️',
  'can someone share the recording from today? 🎥',
  'group meeting at 4pm in the library 📚',
];
const REACTIONS = ['👍', '❤️', '😂', '🎉', '🙏'];
const USERS = 120;

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

class Chat {
  private nextMessage = 1;
  private readonly rnd = random(7);

  constructor(private readonly db: mysql.Connection) {}

  private pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.rnd() * list.length)] as T;
  }

  async seed(): Promise<void> {
    for (let i = 1; i <= USERS; i++) {
      await this.db.query('INSERT INTO users VALUES (?, ?, ?, ?, ?, UTC_TIMESTAMP(6))', [
        i,
        i % 7 === 0 ? `学生${i}` : `student ${i}`,
        `student${i}@school.example`,
        i % 3 === 0 ? 'likes maths 🧮' : null,
        i * 10,
      ]);
    }
    for (const [i, name] of ROOMS.entries()) {
      await this.db.query('INSERT INTO rooms VALUES (?, ?, ?, UTC_TIMESTAMP(6))', [
        i + 1,
        name,
        `all about ${name}`,
      ]);
      for (let u = 1 + i; u <= USERS; u += 3) {
        await this.db.query('INSERT INTO room_members VALUES (?, ?, ?, UTC_TIMESTAMP(6))', [
          i + 1,
          u,
          u === 1 + i ? 'owner' : 'member',
        ]);
      }
    }
    for (let i = 0; i < 800; i++) await this.post();
  }

  private async post(): Promise<void> {
    await this.db.query('INSERT INTO messages VALUES (?, ?, ?, ?, NULL, NULL, NULL, UTC_TIMESTAMP(6))', [
      this.nextMessage++,
      1 + Math.floor(this.rnd() * ROOMS.length),
      1 + Math.floor(this.rnd() * USERS),
      this.pick(LINES),
    ]);
  }

  /** One change of live traffic: mostly new messages, then edits, reactions, soft deletes, new members. */
  async step(): Promise<void> {
    const roll = this.rnd();
    const message = 1 + Math.floor(this.rnd() * (this.nextMessage - 1));
    if (roll < 0.6) await this.post();
    else if (roll < 0.75) {
      await this.db.query(
        "UPDATE messages SET body = CONCAT(body, ' (edited)'), edited_at = UTC_TIMESTAMP(6) WHERE id = ?",
        [message],
      );
    } else if (roll < 0.9) {
      await this.db.query(
        `UPDATE messages SET reactions = JSON_SET(COALESCE(reactions, '{}'), ?, ?) WHERE id = ?`,
        [`$."${this.pick(REACTIONS)}"`, 1 + Math.floor(this.rnd() * 9), message],
      );
    } else if (roll < 0.95) {
      await this.db.query(
        'UPDATE messages SET deleted_at = UTC_TIMESTAMP(6) WHERE id = ? AND deleted_at IS NULL',
        [message],
      );
    } else {
      await this.db.query('UPDATE users SET karma = karma + 1 WHERE id = ?', [
        1 + Math.floor(this.rnd() * USERS),
      ]);
    }
  }
}

/** A table's rows as text, keyed by primary key, hashed: what the source and a restore are compared by. */
async function tableDigest(
  db: mysql.Connection,
  database: string,
  table: string,
  columns: string[],
  key: string,
) {
  const [rows] = await db.query<mysql.RowDataPacket[]>({
    sql: `SELECT ${columns.map((c) => `CAST(\`${c}\` AS CHAR)`).join(', ')} FROM \`${database}\`.\`${table}\` ORDER BY \`${key}\``,
    rowsAsArray: true,
  });
  const hash = createHash('sha256');
  for (const row of rows) hash.update(`${JSON.stringify(row)}\n`);
  return { rows: rows.length, sha256: hash.digest('hex') };
}

const MESSAGE_COLUMNS = [
  'id',
  'room_id',
  'user_id',
  'body',
  'reactions',
  'edited_at',
  'deleted_at',
  'created_at',
];
const USER_COLUMNS = ['id', 'name', 'email', 'bio', 'karma', 'created_at'];

// --- The demo ------------------------------------------------------------------------------------------------

export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const env = localEnv();
  const bold = (s: string) => (o.tty ? `\x1b[1m${s}\x1b[0m` : s);
  const green = (s: string) => (o.tty ? `\x1b[32m${s}\x1b[0m` : s);
  const dim = (s: string) => (o.tty ? `\x1b[2m${s}\x1b[0m` : s);
  const steps: DemoResult['steps'] = [];
  const step = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    o.write(`${bold('▸')} ${name} …\n`);
    const started = Date.now();
    const result = await work();
    const seconds = (Date.now() - started) / 1000;
    steps.push({ name, seconds });
    o.write(`  ${green('✓')} ${dim(`${seconds.toFixed(1)} s`)}\n`);
    return result;
  };

  const stamp = `demo_${Date.now().toString(36)}`;
  mkdirSync(o.workDir, { recursive: true });
  const adminUri = `mysql://${env.TIDEMARK_MYSQL_ADMIN_USER}:${env.TIDEMARK_MYSQL_ADMIN_PASSWORD}@${env.TIDEMARK_MYSQL_HOST}:${env.TIDEMARK_MYSQL_PORT}`;
  const admin = await mysql.createConnection({
    host: env.TIDEMARK_MYSQL_HOST,
    port: Number(env.TIDEMARK_MYSQL_PORT),
    user: env.TIDEMARK_MYSQL_ADMIN_USER,
    password: env.TIDEMARK_MYSQL_ADMIN_PASSWORD,
    charset: 'utf8mb4',
  });
  const daemons: Daemon[] = [];
  const mongo = new MongoClient(env.TIDEMARK_MONGODB_URI as string);
  try {
    const chat = new Chat(admin);
    await step(`a chat schema in MariaDB (${SOURCE_DB}: users, rooms, room_members, messages)`, async () => {
      await admin.query(`DROP DATABASE IF EXISTS \`${SOURCE_DB}\``);
      await admin.query(`DROP DATABASE IF EXISTS \`${RESTORED_DB}\``);
      await admin.query(`CREATE DATABASE \`${SOURCE_DB}\` CHARACTER SET utf8mb4`);
      await admin.query(`USE \`${SOURCE_DB}\``);
      for (const ddl of SCHEMA) await admin.query(ddl);
      await admin.query(`GRANT SELECT ON \`${SOURCE_DB}\`.* TO '${env.TIDEMARK_MYSQL_USER}'@'127.0.0.1'`);
      await chat.seed();
    });

    const ports = { capture: await freePort(), tier: await freePort(), scheduler: await freePort() };
    const raw = {
      source: {
        host: env.TIDEMARK_MYSQL_HOST,
        port: Number(env.TIDEMARK_MYSQL_PORT),
        user: env.TIDEMARK_MYSQL_USER,
        password: env.TIDEMARK_MYSQL_PASSWORD,
        serverId: 60_000 + Math.floor(Math.random() * 5000),
        tables: { include: [`${SOURCE_DB}.*`] },
      },
      kafka: {
        brokers: (env.TIDEMARK_KAFKA_BROKERS as string).split(','),
        topicPrefix: stamp,
        partitions: 2,
      },
      capture: { id: stamp, heartbeatSeconds: 1, checkpointIntervalMs: 500, batch: { lingerMs: 20 } },
      tier: {
        topicRefreshSeconds: 2,
        hot: {
          uri: env.TIDEMARK_MONGODB_URI,
          database: stamp,
          tables: {
            [`${SOURCE_DB}.messages`]: {
              window: { column: 'created_at', days: 30 },
              indexes: [['room_id', 'created_at']],
            },
          },
        },
        cold: {
          url: `s3://${env.TIDEMARK_S3_BUCKET}`,
          prefix: stamp,
          s3: {
            endpoint: env.TIDEMARK_S3_ENDPOINT,
            region: env.TIDEMARK_S3_REGION,
            accessKeyId: env.TIDEMARK_S3_ACCESS_KEY_ID,
            secretAccessKey: env.TIDEMARK_S3_SECRET_ACCESS_KEY,
          },
          flushAfterSeconds: 2,
          rotate: { maxSpanSeconds: 30 },
          columnStats: { [`${SOURCE_DB}.messages`]: ['room_id', 'user_id'] },
        },
      },
      replay: { snapshots: { everyHours: 0.01 } },
      log: { level: 'info' },
    };
    const config = configSchema.parse(structuredClone(raw));
    // One configuration for the three daemons (each gets its own metrics port from the environment).
    const configFile = join(o.workDir, 'tidemark.yaml');
    writeFileSync(configFile, stringify(raw));
    const daemon = (command: string, port: number) =>
      new Daemon(command, configFile, port, join(o.workDir, `${command}.log`));
    const capture = daemon('capture', ports.capture);
    const tier = daemon('tier', ports.tier);
    const scheduler = daemon('scheduler', ports.scheduler);
    daemons.push(capture, tier, scheduler);

    await step(
      'tidemark capture, tier and scheduler started (initial snapshot of the tables, then the binlog)',
      async () => {
        for (const d of daemons) d.start();
        const deadline = Date.now() + 120_000;
        while ((await capture.status()) !== 'streaming') {
          if (Date.now() > deadline)
            throw new Error(`capture did not start streaming; see ${capture.logFile}`);
          await sleep(200);
        }
      },
    );

    await mongo.connect();
    const hotDocuments = async () => {
      let docs = 0;
      for (const info of await mongo.db(stamp).listCollections().toArray()) {
        docs += await mongo.db(stamp).collection(info.name).estimatedDocumentCount();
      }
      return docs;
    };

    await step(`live chat traffic: ${o.rate} changes/s for ${o.durationSeconds} s`, async () => {
      const started = Date.now();
      let done = 0;
      let last = await pipelineStatus(capture, tier, hotDocuments, { events: 0, at: Date.now() - 1000 });
      let printedAt = Date.now();
      while (Date.now() - started < o.durationSeconds * 1000) {
        const due = Math.floor(((Date.now() - started) / 1000) * o.rate);
        while (done < due) {
          await chat.step();
          done++;
        }
        if (Date.now() - last.at >= 1000) {
          const now = await pipelineStatus(capture, tier, hotDocuments, last);
          last = now;
          if (o.tty) o.write(`\r  ${now.line}\x1b[K`);
          else if (Date.now() - printedAt >= 5000) {
            o.write(`  ${now.line}\n`);
            printedAt = Date.now();
          }
        }
        await sleep(20);
      }
      if (o.tty) o.write('\n');
    });

    const before = await step(
      'the rows before the accident, read from the source for the check at the end',
      async () => ({
        messages: await tableDigest(admin, SOURCE_DB, 'messages', MESSAGE_COLUMNS, 'id'),
        users: await tableDigest(admin, SOURCE_DB, 'users', USER_COLUMNS, 'id'),
      }),
    );

    const accidentAt = Date.now();
    const [[busiest]] = (await admin.query(
      `SELECT room_id, count(*) AS n FROM \`${SOURCE_DB}\`.messages GROUP BY room_id ORDER BY n DESC LIMIT 1`,
    )) as unknown as [[{ room_id: number; n: number }]];
    await step(
      `the accident: DELETE of room ${busiest.room_id}'s ${busiest.n} messages, then an UPDATE of every user profile without WHERE`,
      async () => {
        await admin.query(`DELETE FROM \`${SOURCE_DB}\`.messages WHERE room_id = ?`, [busiest.room_id]);
        await admin.query(`UPDATE \`${SOURCE_DB}\`.users SET name = 'Anonymous', bio = NULL`);
        // Traffic goes on after it, as it would.
        for (let i = 0; i < Math.max(20, o.rate); i++) await chat.step();
      },
    );

    const logger = createLogger({ level: 'warn' });
    const tables = [`${SOURCE_DB}.messages`, `${SOURCE_DB}.users`];
    const bad = await step(
      'tidemark changes: the transactions that deleted or rewrote many rows since just before it',
      async () => {
        for (;;) {
          const found = await listChanges(
            { config, logger },
            {
              tables,
              from: new Date(accidentAt - 2000).toISOString(),
              to: undefined,
              where: [],
              ops: ['d', 'u'],
              archiveOnly: false,
              limit: 10_000,
            },
          );
          const big = found.transactions.filter((g) => g.events.length >= 50);
          if (big.length >= 2) return big;
          await sleep(500);
        }
      },
    );
    const describe = (g: TransactionGroup) =>
      `tx ${g.tx ?? '-'} at ${new Date(g.tsMs).toISOString()}: ` +
      `${g.counts.d ? `${g.counts.d} deletes` : `${g.counts.u} updates`} in ${g.tables.join(', ')}`;
    for (const g of bad) o.write(`  ${describe(g)}\n`);
    const first = bad[0] as TransactionGroup;
    o.write(
      `  ${dim(`the same from the command line: tidemark changes -c ${capture.configFile} --tables ${tables.join(',')} --from ${new Date(accidentAt - 2000).toISOString()} --op d,u`)}\n`,
    );
    const point = parsePosition(first.restoreBefore);
    const [[master]] = (await admin.query('SHOW MASTER STATUS')) as unknown as [[{ File: string }]];
    const binlog = binlogFileName(master.File.replace(/\.\d+$/, ''), point.file);
    const through = point.row === positionThrough(point.file, point.offset).row;
    o.write(
      `  restore point: just before the first, ${through ? `after every event ending at ${binlog}:${point.offset}` : `${binlog}:${point.offset}#${point.row}`}\n`,
    );

    const summary = await step(
      `tidemark restore of messages and users to that point, into ${RESTORED_DB}`,
      () =>
        runRestore(
          { config, logger },
          {
            at: first.restoreBefore,
            tables,
            where: [],
            to: `${adminUri}/${RESTORED_DB}`,
            format: 'avro',
            force: true,
            allowGaps: false,
            archiveOnly: false,
            maxKeys: 1_000_000,
          },
        ),
    );
    o.write(
      `  ${summary.events} changes read: ${summary.events - summary.fromKafka} from the archive in MinIO, ${summary.fromKafka} not archived yet from Kafka\n`,
    );

    const after = await step('the restored rows against the rows before the accident', async () => ({
      messages: await tableDigest(admin, RESTORED_DB, 'messages', MESSAGE_COLUMNS, 'id'),
      users: await tableDigest(admin, RESTORED_DB, 'users', USER_COLUMNS, 'id'),
    }));
    const matched =
      after.messages.sha256 === before.messages.sha256 && after.users.sha256 === before.users.sha256;
    o.write(
      matched
        ? `  ${green('✓')} ${after.messages.rows} messages and ${after.users.rows} users, every value equal to the source before the accident\n`
        : `  ✗ restored ${after.messages.rows} messages / ${after.users.rows} users, the source had ${before.messages.rows} / ${before.users.rows}: they differ\n`,
    );

    const verified = await step(
      'tidemark verify --drill: every archived object checked, a restore at a consistent read of the source compared row by row',
      () => runVerify({ config, logger }, { tables: [], integrity: true, drill: true, waitSeconds: 120 }),
    );
    o.write(
      formatVerify(verified, (kind, text) => (kind === 'ok' ? green(text) : text))
        .trimEnd()
        .split('\n')
        .map((l) => `  ${l}\n`)
        .join(''),
    );

    const status = await step('tidemark status of the running deployment', () =>
      deploymentStatus(config, logger),
    );
    o.write(
      formatStatus(status)
        .trimEnd()
        .split('\n')
        .map((l) => `  ${dim(l)}\n`)
        .join(''),
    );

    await step('the daemons stopped (they flush, commit and checkpoint on SIGTERM)', async () => {
      for (const d of daemons.reverse()) await d.stop();
      daemons.length = 0;
    });

    o.write(`\n${bold('What happened')}\n`);
    for (const s of steps) o.write(`  ${s.seconds.toFixed(1).padStart(6)} s  ${s.name}\n`);
    o.write(
      `\n${bold('Look around')}\n` +
        `  source        mysql ${SOURCE_DB}; restored copy: ${RESTORED_DB} (copy rows back with INSERT … SELECT)\n` +
        `  hot replica   MongoDB database ${stamp}\n` +
        `  archive       s3://${env.TIDEMARK_S3_BUCKET}/${stamp} (MinIO at ${env.TIDEMARK_S3_ENDPOINT})\n` +
        `  config, logs  ${o.workDir}\n` +
        `  try           npx tsx services/cli/index.ts query -c ${capture.configFile} 'SELECT room_id, count(*) FROM changes."${SOURCE_DB}.messages" GROUP BY ALL'\n`,
    );
    return {
      matched,
      restored: { messages: after.messages.rows, users: after.users.rows },
      steps,
      status,
      verified: verified.passed,
    };
  } finally {
    for (const d of daemons) await d.stop().catch(() => undefined);
    await mongo.close().catch(() => undefined);
    await admin.end().catch(() => undefined);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const number = (name: string, fallback: number) => {
    const v = process.env[name];
    if (v === undefined || v === '') return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) {
      process.stderr.write(`${name} must be a positive number, not "${v}"\n`);
      process.exit(2);
    }
    return n;
  };
  const result = await runDemo({
    durationSeconds: number('DURATION', 30),
    rate: number('RATE', 200),
    workDir: join(ROOT, '.tidemark', 'demo'),
    write: (text) => process.stdout.write(text),
    tty: process.stdout.isTTY === true,
  });
  process.exitCode = result.matched && result.verified ? 0 : 1;
}
