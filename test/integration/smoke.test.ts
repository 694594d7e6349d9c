// Each local server is real and reachable with the client tidemark uses for it.

import { createHash, randomBytes } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import ZongJi, { type AnyBinlogEvent, type WriteRowsEvent } from '@vlasky/zongji';
import { Kafka, logLevel } from 'kafkajs';
import { MongoClient } from 'mongodb';
import mysql from 'mysql2/promise';
import { afterAll, describe, expect, it } from 'vitest';
import { localServices, uniqueName } from '../support/local-services.js';

const services = localServices();

describe('MariaDB source', () => {
  const db = uniqueName('tm_smoke');
  let admin: mysql.Connection | undefined;

  afterAll(async () => {
    await admin?.query(`DROP DATABASE IF EXISTS \`${db}\``);
    await admin?.end();
  });

  it('delivers an inserted row as a binlog row event through @vlasky/zongji, read by the replication user', async () => {
    const { host, port, user, password, adminUser, adminPassword } = services.mysql;
    admin = await mysql.createConnection({ host, port, user: adminUser, password: adminPassword });
    await admin.query(`CREATE DATABASE \`${db}\``);
    await admin.query(
      `CREATE TABLE \`${db}\`.messages (id BIGINT PRIMARY KEY, body VARCHAR(200)) CHARSET utf8mb4`,
    );
    await admin.query(`GRANT SELECT ON \`${db}\`.* TO '${user}'@'127.0.0.1'`);

    const zongji = new ZongJi({ host, port, user, password });
    const received = new Promise<WriteRowsEvent>((resolve, reject) => {
      zongji.on('error', reject);
      zongji.on('binlog', (event: AnyBinlogEvent) => {
        if (event.getEventName() === 'writerows') resolve(event as WriteRowsEvent);
      });
    });
    const ready = new Promise<void>((resolve) => zongji.on('ready', () => resolve()));
    zongji.start({
      serverId: 4000 + Math.floor(Math.random() * 1000),
      startAtEnd: true,
      includeEvents: ['tablemap', 'writerows'],
      includeSchema: { [db]: ['messages'] },
    });
    try {
      await ready;
      await admin.query(`INSERT INTO \`${db}\`.messages VALUES (1, '你好 👋')`);
      const event = await received;
      expect(event.rows).toEqual([{ id: 1, body: '你好 👋' }]);
      expect(event.nextPosition).toBeGreaterThan(0);
    } finally {
      zongji.stop();
    }
  });
});

describe('Kafka broker', () => {
  it('returns a message produced with kafkajs to a consumer', async () => {
    const kafka = new Kafka({
      clientId: 'tidemark-smoke',
      brokers: services.kafka.brokers,
      logLevel: logLevel.ERROR,
    });
    const topic = uniqueName('tm.smoke');
    const admin = kafka.admin();
    const producer = kafka.producer();
    const consumer = kafka.consumer({ groupId: uniqueName('tm-smoke') });
    await admin.connect();
    try {
      await admin.createTopics({
        topics: [{ topic, numPartitions: 1, replicationFactor: 1 }],
        waitForLeaders: true,
      });
      await producer.connect();
      await producer.send({ topic, messages: [{ key: 'k1', value: 'hello tidemark' }] });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const value = await new Promise<string>((resolve) => {
        void consumer.run({
          eachMessage: ({ message }) => {
            resolve(message.value?.toString() ?? '');
            return Promise.resolve();
          },
        });
      });
      expect(value).toBe('hello tidemark');
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    }
  });
});

describe('FerretDB (MongoDB protocol)', () => {
  it('reads back a document written with the mongodb driver', async () => {
    const client = new MongoClient(services.mongodb.uri, { serverSelectionTimeoutMS: 10_000 });
    const dbName = uniqueName('tm_smoke');
    try {
      await client.connect();
      const messages = client.db(dbName).collection<{ _id: string; body: string; room: number }>('messages');
      await messages.insertOne({ _id: 'm1', body: '你好 👋', room: 42 });
      expect(await messages.findOne({ _id: 'm1' })).toEqual({ _id: 'm1', body: '你好 👋', room: 42 });
    } finally {
      await client
        .db(dbName)
        .dropDatabase()
        .catch(() => undefined);
      await client.close();
    }
  });
});

function s3Client(): S3Client {
  const { endpoint, region, accessKeyId, secretAccessKey } = services.s3;
  return new S3Client({
    endpoint,
    region,
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
  });
}

describe('MinIO (S3)', () => {
  it('stores an object with a SHA-256 checksum and returns the same bytes and checksum', async () => {
    const { bucket } = services.s3;
    const s3 = s3Client();
    const key = `smoke/${uniqueName('object')}.bin`;
    const body = randomBytes(64 * 1024);
    const sha256 = createHash('sha256').update(body).digest('base64');
    try {
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: body,
          ChecksumAlgorithm: 'SHA256',
          ChecksumSHA256: sha256,
        }),
      );
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }));
      expect(got.ChecksumSHA256).toBe(sha256);
      expect(Buffer.from(await got.Body!.transformToByteArray()).equals(body)).toBe(true);
    } finally {
      s3.destroy();
    }
  });

  it('refuses an object whose declared SHA-256 does not match its bytes', async () => {
    const { bucket } = services.s3;
    const s3 = s3Client();
    const wrong = createHash('sha256').update('something else').digest('base64');
    try {
      await expect(
        s3.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: `smoke/${uniqueName('corrupt')}.bin`,
            Body: Buffer.from('payload'),
            ChecksumAlgorithm: 'SHA256',
            ChecksumSHA256: wrong,
          }),
        ),
      ).rejects.toThrow();
    } finally {
      s3.destroy();
    }
  });
});
