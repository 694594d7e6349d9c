import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
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
