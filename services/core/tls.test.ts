import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { snapshotConnectionOptions } from '../capture/snapshot.js';
import { configSchema } from './config.js';
import { errorOf } from '../../test/support/error-of.js';
import { tlsOptions } from './tls.js';

const dir = mkdtempSync(join(tmpdir(), 'tidemark-tls-'));
const file = (name: string, text: string) => {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
};
const ca = file('ca.pem', '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n');
const cert = file('client.pem', '-----BEGIN CERTIFICATE-----\nME\n-----END CERTIFICATE-----\n');
const key = file('client.key', '-----BEGIN PRIVATE KEY-----\nK\n-----END PRIVATE KEY-----\n');

describe('TLS settings', () => {
  it('are validated with the rest of the configuration and reach every driver', () => {
    const config = configSchema.parse({
      source: {
        user: 'repl',
        serverId: 7,
        tables: { include: ['chat.*'] },
        tls: { caFile: ca, certFile: cert, keyFile: key },
      },
      kafka: {
        brokers: 'k1:9093',
        tls: { caFile: ca },
        sasl: { mechanism: 'scram-sha-512', username: 'tidemark', password: 'pw' },
      },
    });
    expect(config.source?.tls?.rejectUnauthorized).toBe(true);
    expect(config.kafka?.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'tidemark', password: 'pw' });
    const ssl = snapshotConnectionOptions(config.source!).ssl as Record<string, string | boolean>;
    expect([ssl.ca, ssl.cert, ssl.key, ssl.rejectUnauthorized]).toEqual([
      readFileSync(ca, 'utf8'),
      readFileSync(cert, 'utf8'),
      readFileSync(key, 'utf8'),
      true,
    ]);
    expect(tlsOptions(config.kafka!.tls, 'kafka')).toEqual({
      ca: readFileSync(ca, 'utf8'),
      rejectUnauthorized: true,
    });
    expect(tlsOptions(undefined, 'kafka')).toBeUndefined();
  });

  it('say which file cannot be read, and want a certificate with its key', () => {
    const missing = errorOf(() =>
      tlsOptions({ caFile: join(dir, 'nope.pem'), rejectUnauthorized: true }, 'source'),
    );
    expect(missing.code).toBe('CONFIG_INVALID');
    expect(missing.message).toMatch(/^source\.tls\.caFile: cannot read .*nope\.pem/);
    const half = errorOf(() => tlsOptions({ certFile: cert, rejectUnauthorized: true }, 'kafka'));
    expect(half.message).toBe('kafka.tls: give certFile and keyFile together');
  });
});
