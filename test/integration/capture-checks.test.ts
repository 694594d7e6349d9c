// capture refuses a source it would misread, saying which setting is wrong and the statement that fixes it.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capture, CaptureMetrics } from '../../services/capture/index.js';
import { createLogger, TidemarkError, type Config } from '../../services/core/index.js';
import { captureFixture, type CaptureFixture } from '../support/capture-fixture.js';
import { uniqueName } from '../support/local-services.js';

const logger = createLogger({ level: process.env.TIDEMARK_TEST_LOG ?? 'silent' });

function newCapture(config: Config, resnapshot = false): Capture {
  const { source, kafka, capture } = config;
  return new Capture({
    source: source!,
    kafka: kafka!,
    capture,
    logger,
    metrics: new CaptureMetrics(),
    resnapshot,
  });
}

/** Runs capture until it streams, then stops it gracefully. */
async function runUntilStreaming(capture: Capture): Promise<void> {
  const controller = new AbortController();
  const running = capture.run(controller.signal);
  while (capture.lastCheckpoint?.phase !== 'streaming') await new Promise((r) => setTimeout(r, 100));
  controller.abort();
  await running;
}

async function runFails(
  config: Config,
  options: { resnapshot?: boolean; untilMs?: number } = {},
): Promise<TidemarkError> {
  const capture = newCapture(config, options.resnapshot);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.untilMs ?? 30_000);
  try {
    await capture.run(controller.signal);
  } catch (err) {
    if (err instanceof TidemarkError) return err;
    throw err;
  } finally {
    clearTimeout(timer);
  }
  throw new Error('capture ran without refusing the source');
}

describe('capture start-up checks', () => {
  let fx: CaptureFixture;

  beforeAll(async () => {
    fx = await captureFixture({ tables: ['CREATE TABLE messages (id INT PRIMARY KEY, body TEXT)'] });
  });

  afterAll(async () => {
    await fx.admin.query(
      "SET GLOBAL binlog_format = 'ROW', GLOBAL binlog_row_image = 'FULL', GLOBAL binlog_row_metadata = 'FULL'",
    );
    await fx.drop();
  });

  it('names every wrong binlog setting with the statement that fixes it', async () => {
    await fx.admin.query(
      "SET GLOBAL binlog_format = 'STATEMENT', GLOBAL binlog_row_image = 'MINIMAL', GLOBAL binlog_row_metadata = 'MINIMAL'",
    );
    try {
      const err = await runFails(fx.config);
      expect(err.code).toBe('SOURCE_MISCONFIGURED');
      expect(err.message).toContain('binlog_format is STATEMENT, tidemark needs ROW');
      expect(err.message).toContain('SET GLOBAL binlog_format=ROW');
      expect(err.message).toContain('SET GLOBAL binlog_row_image=FULL');
      expect(err.message).toContain('SET GLOBAL binlog_row_metadata=FULL');
      expect(err.message).toContain('decode into the wrong columns');
    } finally {
      await fx.admin.query(
        "SET GLOBAL binlog_format = 'ROW', GLOBAL binlog_row_image = 'FULL', GLOBAL binlog_row_metadata = 'FULL'",
      );
    }
  });

  it('names missing grants with the GRANT statements to run', async () => {
    const user = uniqueName('tm_nogrant').slice(0, 30);
    await fx.admin.query(`CREATE USER '${user}'@'127.0.0.1' IDENTIFIED BY 'pw-${user}'`);
    await fx.admin.query(`GRANT SHOW DATABASES ON *.* TO '${user}'@'127.0.0.1'`);
    try {
      const tables = { include: [`${fx.db}.messages`], exclude: [] };
      const config = { ...fx.config, source: { ...fx.config.source!, user, password: `pw-${user}`, tables } };
      const err = await runFails(config);
      expect(err.code).toBe('SOURCE_MISCONFIGURED');
      expect(err.message).toContain('lacks REPLICATION SLAVE, REPLICATION CLIENT');
      expect(err.message).toContain(`GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '${user}'`);
      expect(err.message).toContain(`cannot SELECT from ${fx.db}.messages`);
      expect(err.message).toContain(`GRANT SELECT ON \`${fx.db}\`.\`messages\``);
    } finally {
      await fx.admin.query(`DROP USER '${user}'@'127.0.0.1'`);
    }
  });

  it("refuses the source's own server id", async () => {
    const config = { ...fx.config, source: { ...fx.config.source!, serverId: 1 } };
    const err = await runFails(config);
    expect(err.message).toContain("source.serverId 1 is the source's own server_id");
  });

  it('says so when no table matches the include patterns', async () => {
    const config = {
      ...fx.config,
      source: { ...fx.config.source!, tables: { include: [`${fx.db}.nope_*`], exclude: [] } },
    };
    const err = await runFails(config);
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain('no table of the source matches source.tables');
  });

  it('stops with a clear error offering --resnapshot when the binlog was purged past its checkpoint, and never skips', async () => {
    const capture = newCapture(fx.config);
    await runUntilStreaming(capture);
    const checkpointFile = capture.lastCheckpoint!.binlogFile;
    await fx.admin.query('INSERT INTO messages VALUES (1, "written after the checkpoint")');
    await fx.admin.query('FLUSH BINARY LOGS');
    const [rows] = await fx.admin.query('SHOW MASTER STATUS');
    const current = (rows as { File: string }[])[0]!.File;
    // The server keeps a file a dump thread still reads; the stopped capture's thread ends shortly.
    for (let tries = 0; ; tries++) {
      await fx.admin.query(`PURGE BINARY LOGS TO '${current}'`);
      const [logs] = await fx.admin.query('SHOW BINARY LOGS');
      if ((logs as { Log_name: string }[])[0]?.Log_name === current) break;
      if (tries > 50) throw new Error(`the server kept binlogs before ${current}`);
      await new Promise((r) => setTimeout(r, 200));
    }

    const err = await runFails(fx.config);
    expect(err.code).toBe('SOURCE_MISCONFIGURED');
    expect(err.message).toContain(
      `no longer has the binlog position tidemark must resume from (${checkpointFile}:`,
    );
    expect(err.hint).toContain('--resnapshot');
    expect(err.hint).toContain('nothing was skipped');

    // With --resnapshot it takes a new snapshot, which holds the row the purged binlog had.
    const again = newCapture(fx.config, true);
    await runUntilStreaming(again);
    expect(again.lastCheckpoint?.snapshot?.binlogFile).toBe(current);
  });
});
