// capture against the real MariaDB and Kafka: snapshot, streaming, types, masking, rotation, DDL, restart.

import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capture, CaptureMetrics, tail } from '../../services/capture/index.js';
import { binlogEnd } from '../../services/capture/source-checks.js';
import {
  binlogSequence,
  changeTopic,
  comparePositions,
  createKafka,
  createLogger,
  SchemaCatalog,
  type ChangeEvent,
} from '../../services/core/index.js';
import { ChangeCollector, type CollectedEvent } from '../support/change-collector.js';
import { captureFixture, type CaptureFixture } from '../support/capture-fixture.js';
import { eventually } from '../support/eventually.js';

const MASK_KEY = 'a-test-mask-key-of-at-least-32-characters';

const ALL_TYPES = `CREATE TABLE all_types (
  id BIGINT UNSIGNED PRIMARY KEY, ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, mi MEDIUMINT UNSIGNED, i INT,
  iu INT UNSIGNED, bi BIGINT, d DECIMAL(30,10), d2 DECIMAL(5,2), f FLOAT, db DOUBLE, bt BIT(10), bt64 BIT(64),
  dt DATE, tm TIME(3), dtm DATETIME(6), dtm0 DATETIME, ts TIMESTAMP(6) NULL, y YEAR, c CHAR(5), vc VARCHAR(100),
  tx TEXT, lat VARCHAR(20) CHARACTER SET latin1, gbk VARCHAR(20) CHARACTER SET gbk, bn BINARY(4), vb VARBINARY(10),
  bl BLOB, js JSON, e ENUM('a','in-progress',''), st SET('x','y','z'), g GEOMETRY, pt POINT, f7 FLOAT, y0 YEAR
) CHARSET utf8mb4`;

const extremeRow = (
  id: string,
) => `INSERT INTO all_types VALUES (${id}, -128, 255, -32768, 16777215, -2147483648, 4294967295,
  -9223372036854775808, -12345678901234567890.0123456789, -999.99, 3.14159, 2.718281828459045, b'1010101010',
  b'1111111111111111111111111111111111111111111111111111111111111111', '2024-02-29', '-838:59:58.123',
  '2024-03-01 10:03:11.123456', '0000-00-00 00:00:00', '2024-03-01 10:03:11.654321', 2024, 'ab', '你好 👋 𝄞',
  REPEAT('x', 3), 'café', '中文', x'00ff', x'0001', x'deadbeef', '{"a": [1, 2.50, "z"], "b": null}', 'in-progress', 'x,z',
  ST_GeomFromText('LINESTRING(0 0,1 1)'), ST_GeomFromText('POINT(1 2)', 4326), 1234567, 0)`;

const EXPECTED_EXTREMES = {
  id: '18446744073709551615',
  ti: -128,
  tiu: 255,
  si: -32768,
  mi: 16777215,
  i: -2147483648,
  iu: 4294967295n,
  bi: -9223372036854775808n,
  d: '-12345678901234567890.0123456789',
  d2: '-999.99',
  f: Math.fround(3.14159),
  db: 2.718281828459045,
  bt: Buffer.from([0x02, 0xaa]),
  bt64: Buffer.alloc(8, 0xff),
  dt: '2024-02-29',
  tm: '-838:59:58.123',
  dtm: '2024-03-01 10:03:11.123456',
  dtm0: '0000-00-00 00:00:00',
  // Written at session time zone +08:00; TIMESTAMP travels in UTC.
  ts: '2024-03-01 02:03:11.654321',
  y: 2024,
  c: 'ab',
  vc: '你好 👋 𝄞',
  tx: 'xxx',
  lat: 'café',
  gbk: '中文',
  bn: Buffer.from([0x00, 0xff, 0x00, 0x00]),
  vb: Buffer.from([0x00, 0x01]),
  bl: Buffer.from('deadbeef', 'hex'),
  js: '{"a": [1, 2.50, "z"], "b": null}',
  e: 'in-progress',
  st: 'x,z',
  // Standard WKB (little-endian), without MySQL's SRID prefix.
  g: Buffer.from('010200000002000000' + '0'.repeat(32) + '000000000000f03f000000000000f03f', 'hex'),
  pt: Buffer.from('0101000000000000000000f03f0000000000000040', 'hex'),
  // Seven significant digits: SQL's text protocol would round a FLOAT to six.
  f7: 1234567,
  y0: 0,
};

/** Waits for a condition while the capture keeps running; a capture that fails fails the wait. */
async function until(done: () => boolean, running: Promise<void>, timeoutMs = 60_000): Promise<void> {
  let failed: Error | undefined;
  running.catch((err: unknown) => (failed = err instanceof Error ? err : new Error(String(err))));
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (failed) throw failed;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const NULL_ROW = Object.fromEntries(Object.keys(EXPECTED_EXTREMES).map((k) => [k, null]));

describe('capture', () => {
  let fx: CaptureFixture;
  let capture: Capture;
  let controller: AbortController;
  let running: Promise<void>;
  let collector: ChangeCollector;
  let catalog: SchemaCatalog;
  const logger = createLogger({ level: process.env.TIDEMARK_TEST_LOG ?? 'warn' });

  const topic = (table: string) => changeTopic(fx.prefix, fx.db, table);
  const of = (events: CollectedEvent[], table: string) =>
    events.filter((e) => e.topic === topic(table)).map((e) => e.event);

  function start(): void {
    const { source, kafka } = fx.config;
    capture = new Capture({
      source: source!,
      kafka: kafka!,
      capture: fx.config.capture,
      logger,
      metrics: new CaptureMetrics(),
    });
    controller = new AbortController();
    running = capture.run(controller.signal);
  }

  async function stop(): Promise<void> {
    controller.abort();
    await running;
  }

  beforeAll(async () => {
    fx = await captureFixture({
      tables: [
        'CREATE TABLE messages (id BIGINT PRIMARY KEY AUTO_INCREMENT, room_id INT NOT NULL, body TEXT, created_at DATETIME(6))',
        'CREATE TABLE users (id INT PRIMARY KEY, email VARCHAR(100), password_hash VARCHAR(100), name VARCHAR(50))',
        ALL_TYPES,
      ],
      configure: (c, db) => {
        const source = c.source as Record<string, unknown>;
        source.maskKey = MASK_KEY;
        source.columns = { [`${db}.users`]: { exclude: ['password_hash'], mask: { email: 'hash' } } };
      },
    });
    await fx.admin.query(`INSERT INTO messages (room_id, body, created_at) VALUES
      (42, 'before the snapshot 1', '2024-03-01 10:00:00.000001'), (42, 'before the snapshot 2', NULL), (7, '雪', NULL)`);
    await fx.admin.query(
      `INSERT INTO users VALUES (1, 'ada@example.com', 'secret-hash-1', 'Ada'), (2, 'bo@example.com', 'secret-hash-2', 'Bo')`,
    );
    await fx.admin.query(`SET time_zone = '+08:00'; ${extremeRow('18446744073709551614')}`);
    start();
    const kafka = createKafka(fx.config.kafka!, logger, '-test');
    catalog = new SchemaCatalog(kafka, fx.prefix, logger);
    collector = new ChangeCollector(kafka, catalog);
    await until(() => capture.lastCheckpoint?.phase === 'streaming', running);
    await collector.start([topic('messages'), topic('users'), topic('all_types')]);
  });

  afterAll(async () => {
    await stop().catch(() => undefined);
    await collector?.stop();
    await catalog?.close();
    await fx?.drop();
  });

  it('takes an initial snapshot as op r events, all at the binlog position it is consistent with', async () => {
    const events = await collector.waitFor(
      (e) => of(e, 'messages').length >= 3 && of(e, 'users').length >= 2,
    );
    const snapshot = [...of(events, 'messages'), ...of(events, 'users')].filter((e) => e.op === 'r');
    expect(snapshot).toHaveLength(5);
    const { binlogFile, binlogOffset } = capture.lastCheckpoint!.snapshot!;
    for (const e of snapshot) {
      expect(e.before).toBeNull();
      expect(e.pos.offset).toBe(binlogOffset);
      expect(e.tx).toBe(`snapshot:${binlogFile}:${binlogOffset}`);
    }
    // Numbered per table in primary-key order, so a retried snapshot at the same position repeats them.
    const numbering = (table: string) =>
      snapshot.filter((e) => e.source.table === table).map((e) => [e.pos.row, e.key]);
    expect(numbering('messages')).toEqual([
      [0, '["1"]'],
      [1, '["2"]'],
      [2, '["3"]'],
    ]);
    expect(numbering('users')).toEqual([
      [0, '[1]'],
      [1, '[2]'],
    ]);
    const bodies = of(events, 'messages').map((e) => e.after?.body);
    expect(bodies).toEqual(expect.arrayContaining(['before the snapshot 1', 'before the snapshot 2', '雪']));
    expect(
      of(events, 'messages').find((e) => e.after?.body === 'before the snapshot 1')?.after?.created_at,
    ).toBe('2024-03-01 10:00:00.000001');
  });

  it('streams inserts, updates and deletes with exact before and after images, in position order', async () => {
    await fx.admin.query(
      `INSERT INTO messages (id, room_id, body) VALUES (100, 42, 'hello'), (101, 42, 'world')`,
    );
    await fx.admin.query(`UPDATE messages SET body = 'hello, edited' WHERE id = 100`);
    await fx.admin.query(
      `BEGIN; DELETE FROM messages WHERE room_id = 7; UPDATE users SET name = 'Ada L.' WHERE id = 1; COMMIT`,
    );
    const events = await collector.waitFor((e) => of(e, 'messages').filter((m) => m.op !== 'r').length >= 4);
    const stream = of(events, 'messages').filter((e) => e.op !== 'r');
    expect(stream.map((e) => [e.op, e.key])).toEqual([
      ['c', '["100"]'],
      ['c', '["101"]'],
      ['u', '["100"]'],
      ['d', '["3"]'],
    ]);
    const update = stream[2] as ChangeEvent;
    expect(update.before).toMatchObject({ id: 100n, room_id: 42, body: 'hello' });
    expect(update.after).toMatchObject({ id: 100n, room_id: 42, body: 'hello, edited' });
    expect(stream[3]?.before).toMatchObject({ id: 3n, room_id: 7, body: '雪' });
    expect(stream[3]?.after).toBeNull();
    const positions = of(events, 'messages').map((e) => e.pos);
    expect([...positions].sort(comparePositions)).toEqual(positions);
    // The DELETE and the users UPDATE were one source transaction.
    const userUpdate = await collector.waitFor((e) => of(e, 'users').some((u) => u.op === 'u'));
    expect(of(userUpdate, 'users').find((u) => u.op === 'u')?.tx).toBe(stream[3]?.tx);
  });

  it('round-trips every column type at its extremes, value for value', async () => {
    await fx.admin.query(
      `SET time_zone = '+08:00'; ${extremeRow('18446744073709551615')}; INSERT INTO all_types (id, e) VALUES (1, '')`,
    );
    const events = await collector.waitFor((e) => of(e, 'all_types').length >= 3);
    const [snapshot, extreme, nulls] = of(events, 'all_types');
    expect(extreme?.after).toEqual(EXPECTED_EXTREMES);
    expect(nulls?.after).toEqual({ ...NULL_ROW, id: '1', e: '' });
    // The snapshot reads the table with SQL, not the binlog, and must give the very same values.
    expect(snapshot?.op).toBe('r');
    expect(snapshot?.after).toEqual({ ...EXPECTED_EXTREMES, id: '18446744073709551614' });
    expect(snapshot?.source.schemaVersion).toBe(extreme?.source.schemaVersion);
    // MariaDB's JSON is a LONGTEXT with a json_valid check in the binlog; it is published as JSON.
    const codec = await catalog.codecFor(extreme!.source.schemaVersion);
    expect(codec.table.columns.find((c) => c.name === 'js')?.type).toBe('json');
  });

  it('drops excluded columns and masks masked ones before anything leaves the process', async () => {
    const events = await collector.waitFor((e) => of(e, 'users').length >= 3);
    const hmac = (v: string) => createHmac('sha256', MASK_KEY).update(v).digest('hex');
    for (const e of of(events, 'users')) {
      expect(e.after).not.toHaveProperty('password_hash');
      expect(
        JSON.stringify(e.after, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
      ).not.toContain('secret-hash');
    }
    const ada = of(events, 'users').filter((e) => e.key === '[1]');
    expect(ada.map((e) => e.after?.email)).toEqual([hmac('ada@example.com'), hmac('ada@example.com')]);
    expect(ada[1]?.before?.name).toBe('Ada');
  });

  it('keeps streaming across a binlog rotation', async () => {
    await fx.admin.query(`INSERT INTO messages (id, room_id, body) VALUES (200, 1, 'before rotation')`);
    await fx.admin.query('FLUSH BINARY LOGS');
    await fx.admin.query(`INSERT INTO messages (id, room_id, body) VALUES (201, 1, 'after rotation')`);
    const events = await collector.waitFor((e) => of(e, 'messages').some((m) => m.key === '["201"]'));
    const find = (key: string) => of(events, 'messages').find((m) => m.key === key) as ChangeEvent;
    const before = find('["200"]');
    const after = find('["201"]');
    expect(after.pos.file).toBe(before.pos.file + 1);
    expect(comparePositions(before.pos, after.pos)).toBeLessThan(0);
  });

  it('moves its checkpoint to the new binlog file when a rotation is all that happens on a quiet source', async () => {
    await fx.admin.query('FLUSH BINARY LOGS');
    const end = await binlogEnd(fx.admin);
    // Only the server's heartbeat tells capture where the binlog now ends.
    await eventually(
      'a checkpoint in the new binlog file',
      () => {
        const at = capture.lastCheckpoint;
        if (at === undefined) return Promise.resolve(undefined);
        const ahead =
          binlogSequence(at.binlogFile) - binlogSequence(end.file) || at.binlogOffset - end.offset;
        return Promise.resolve(ahead >= 0 ? true : undefined);
      },
      30_000,
    );
  });

  it('gives rows before and after an ALTER TABLE their own columns and schema versions', async () => {
    await fx.admin.query(`INSERT INTO messages (id, room_id, body) VALUES (300, 5, 'old shape')`);
    await fx.admin.query(
      `ALTER TABLE messages ADD COLUMN edited_at DATETIME(3) NULL AFTER room_id, DROP COLUMN created_at`,
    );
    await fx.admin.query(
      `INSERT INTO messages (id, room_id, edited_at, body) VALUES (301, 5, '2024-05-05 05:05:05.500', 'new shape')`,
    );
    await fx.admin.query(`ALTER TABLE messages CHANGE body text_body TEXT, ADD COLUMN meta JSON`);
    await fx.admin.query(
      `UPDATE messages SET text_body = 'renamed column', meta = '{"edited": true}' WHERE id = 301`,
    );
    const events = await collector.waitFor(
      (e) => of(e, 'messages').filter((m) => m.key === '["301"]').length >= 2,
    );
    const old = of(events, 'messages').find((m) => m.key === '["300"]') as ChangeEvent;
    const [added, renamed] = of(events, 'messages').filter((m) => m.key === '["301"]') as [
      ChangeEvent,
      ChangeEvent,
    ];
    expect(old.after).toEqual({ id: 300n, room_id: 5, body: 'old shape', created_at: null });
    expect(added.after).toEqual({
      id: 301n,
      room_id: 5,
      edited_at: '2024-05-05 05:05:05.500',
      body: 'new shape',
    });
    expect(renamed.before).toEqual({
      id: 301n,
      room_id: 5,
      edited_at: '2024-05-05 05:05:05.500',
      text_body: 'new shape',
      meta: null,
    });
    expect(renamed.after?.text_body).toBe('renamed column');
    expect(renamed.after?.meta).toBe('{"edited": true}');
    // A JSON column added mid-stream is JSON from its first row (MariaDB logs it as LONGTEXT).
    const codec = await catalog.codecFor(renamed.source.schemaVersion);
    expect(codec.table.columns.find((c) => c.name === 'meta')?.type).toBe('json');
    expect(new Set([old, added, renamed].map((e) => e.source.schemaVersion)).size).toBe(3);
  });

  it('commits a steady trickle of small transactions after the linger time, not when a batch fills', async () => {
    let stop = false;
    let written = 0;
    const trickle = (async () => {
      while (!stop) {
        await fx.admin.query(`INSERT INTO all_types (id) VALUES (${1000 + written})`);
        written++;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      // Well before the trickle ends (and far from a full batch), its first rows are readable.
      await collector.waitFor((e) => of(e, 'all_types').some((m) => m.key === '["1000"]'), 5_000);
      expect(stop).toBe(false);
    } finally {
      stop = true;
      await trickle;
    }
    expect(written).toBeLessThan(fx.config.capture.batch.maxEvents);
  });

  it('decodes a table for a person with tidemark tail, and names the tables it has when asked for another', async () => {
    const lines: string[] = [];
    const run = (table: string, json: boolean) =>
      tail({
        kafka: fx.config.kafka!,
        table,
        fromBeginning: true,
        limit: 3,
        json,
        binlogBasename: 'mariadb-bin',
        logger,
        write: (line) => lines.push(line),
        signal: new AbortController().signal,
      });
    expect(await run(`${fx.db}.all_types`, false)).toBe(3);
    expect(lines[0]).toMatch(
      new RegExp(
        `^\\S+Z  r  ${fx.db}\\.all_types  key=\\["18446744073709551614"\\]  pos=mariadb-bin\\.\\d{6}:\\d+  tx=snapshot:`,
      ),
    );
    expect(lines[0]).toContain('"vc":"你好 👋 𝄞"');
    expect(lines[0]).toContain('"bi":"-9223372036854775808"');
    lines.length = 0;
    await run(`${fx.db}.all_types`, true);
    const parsed = JSON.parse(lines[1] as string) as { op: string; after: Record<string, unknown> };
    expect(parsed.op).toBe('c');
    expect(parsed.after.bt).toBe('0x02aa');
    await expect(run(`${fx.db}.nope`, false)).rejects.toThrow(/no change topic .*nope/);
  });

  it('resumes from its checkpoint after a stop, without skipping what was written meanwhile', async () => {
    await stop();
    expect(capture.lastCheckpoint?.phase).toBe('streaming');
    await fx.admin.query(
      `INSERT INTO messages (id, room_id, text_body) VALUES (400, 9, 'written while capture was down')`,
    );
    await fx.admin.query(`DELETE FROM messages WHERE id = 400`);
    start();
    const events = await collector.waitFor(
      (e) => of(e, 'messages').filter((m) => m.key === '["400"]').length >= 2,
    );
    expect(
      of(events, 'messages')
        .filter((m) => m.key === '["400"]')
        .map((m) => m.op),
    ).toEqual(['c', 'd']);
    // No snapshot again: a restart resumes streaming.
    expect(of(events, 'messages').filter((m) => m.op === 'r')).toHaveLength(3);
  });
});
