import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { TidemarkError } from './errors.js';
import { createLogger, REDACTED, redactSecrets } from './logger.js';

function capture(): { lines: () => Record<string, unknown>[]; stream: Writable } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('logger', () => {
  it('writes JSON lines with a level name and an ISO time', () => {
    const out = capture();
    createLogger({ destination: out.stream }).info({ table: 'chat.messages' }, 'captured');
    const [line] = out.lines();
    expect(line).toMatchObject({ level: 'info', name: 'tidemark', table: 'chat.messages', msg: 'captured' });
    expect(String(line?.time)).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('never prints secrets, at any depth of the logged object', () => {
    const out = capture();
    createLogger({ destination: out.stream }).info(
      { password: 'p1', config: { source: { password: 'p2' }, s3: { secretAccessKey: 'p3' } } },
      'starting',
    );
    const text = JSON.stringify(out.lines());
    for (const secret of ['p1', 'p2', 'p3']) expect(text).not.toContain(`"${secret}"`);
    expect(text).toContain(REDACTED);
  });

  it('redacts a configuration for printing without touching the original', () => {
    const config = { source: { user: 'capture', password: 'hunter2' }, kafka: { brokers: ['b:1'] } };
    expect(redactSecrets(config)).toEqual({
      source: { user: 'capture', password: REDACTED },
      kafka: { brokers: ['b:1'] },
    });
    expect(config.source.password).toBe('hunter2');
  });
});

describe('serializeError', () => {
  it('keeps type, code, message, hint and causes of a driver error with circular references', () => {
    const topology: Record<string, unknown> = {};
    const driver = Object.assign(new Error('connection closed'), { code: 'ECONNRESET', topology });
    topology.self = driver;
    const err = new TidemarkError('REPLICA_UNAVAILABLE', 'writing chat.messages failed', {
      cause: driver,
      hint: 'check MongoDB',
    });
    const lines: string[] = [];
    const logger = createLogger({ destination: { write: (l: string) => lines.push(l) } });
    logger.warn({ err }, 'batch failed');
    const logged = JSON.parse(lines[0]!) as { err: Record<string, unknown> };
    expect(logged.err).toMatchObject({
      type: 'TidemarkError',
      code: 'REPLICA_UNAVAILABLE',
      message: 'writing chat.messages failed',
      hint: 'check MongoDB',
      cause: { type: 'Error', code: 'ECONNRESET', message: 'connection closed' },
    });
    expect(logged.err.stack).toBeUndefined();
  });
});
