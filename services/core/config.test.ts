import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { errorOf } from '../../test/support/error-of.js';
import { loadConfig } from './config.js';

function configFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-config-'));
  const file = join(dir, 'tidemark.yaml');
  writeFileSync(file, text);
  return file;
}

const minimal = `
source:
  user: capture
  password: s3cret
  serverId: 4242
  tables:
    include: [chat.messages, chat.users]
kafka:
  brokers: [127.0.0.1:29092]
`;

describe('loadConfig', () => {
  it('reads a YAML file and fills in the defaults', () => {
    const config = loadConfig({ file: configFile(minimal), env: {} });
    expect(config.source).toMatchObject({ host: '127.0.0.1', port: 3306, user: 'capture', serverId: 4242 });
    expect(config.source?.tables).toEqual({ include: ['chat.messages', 'chat.users'], exclude: [] });
    expect(config.kafka).toMatchObject({
      brokers: ['127.0.0.1:29092'],
      topicPrefix: 'tidemark',
      partitions: 1,
    });
    expect(config.log.level).toBe('info');
    expect(config.http).toEqual({ host: '127.0.0.1', port: 9464 });
  });

  it('lets TIDEMARK__SECTION__FIELD variables override the file, with typed values', () => {
    const config = loadConfig({
      file: configFile(minimal),
      env: {
        TIDEMARK__SOURCE__PORT: '23306',
        TIDEMARK__SOURCE__SERVER_ID: '7',
        TIDEMARK__KAFKA__BROKERS: 'a:1, b:2',
        TIDEMARK__LOG__LEVEL: 'debug',
      },
    });
    expect(config.source?.port).toBe(23306);
    expect(config.source?.serverId).toBe(7);
    expect(config.kafka?.brokers).toEqual(['a:1', 'b:2']);
    expect(config.log.level).toBe('debug');
  });

  it('builds a whole configuration from the environment alone', () => {
    const config = loadConfig({ env: { TIDEMARK__KAFKA__BROKERS: '127.0.0.1:9092' } });
    expect(config.kafka?.brokers).toEqual(['127.0.0.1:9092']);
    expect(config.source).toBeUndefined();
  });

  it('substitutes ${VAR} references and names the field whose variable is unset', () => {
    const file = configFile(minimal.replace('password: s3cret', 'password: ${CAPTURE_PASSWORD}'));
    expect(loadConfig({ file, env: { CAPTURE_PASSWORD: 'from-env' } }).source?.password).toBe('from-env');
    const err = errorOf(() => loadConfig({ file, env: {} }));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain('source.password');
    expect(err.message).toContain('CAPTURE_PASSWORD');
  });

  it('reads a secret from a file named by passwordFile', () => {
    const secret = configFile('from-a-file\n');
    const file = configFile(minimal.replace('password: s3cret', `passwordFile: ${secret}`));
    expect(loadConfig({ file, env: {} }).source?.password).toBe('from-a-file');
  });

  it('names every bad field, its problem, and how to override it', () => {
    const file = configFile(
      minimal.replace('serverId: 4242', 'serverId: "four"').replace('user: capture', 'usr: x'),
    );
    const err = errorOf(() => loadConfig({ file, env: {} }));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain(file);
    expect(err.message).toMatch(/source\.serverId: .*number/);
    expect(err.message).toMatch(/source\.user: required/);
    expect(err.message).toMatch(/usr/);
    expect(err.hint).toContain('TIDEMARK__');
  });

  it('takes a deflate level of 1 to 9 for the cold archive, 1 unless given', () => {
    const tier = (level: string) => `${minimal}tier:\n  cold:\n    url: dir:/tmp/archive\n${level}`;
    expect(loadConfig({ file: configFile(tier('')), env: {} }).tier?.cold?.deflateLevel).toBe(1);
    expect(
      loadConfig({ file: configFile(tier('    deflateLevel: 9\n')), env: {} }).tier?.cold?.deflateLevel,
    ).toBe(9);
    const err = errorOf(() => loadConfig({ file: configFile(tier('    deflateLevel: 0\n')), env: {} }));
    expect(err.message).toMatch(/tier\.cold\.deflateLevel: .*1/);
  });

  it('says which file is missing and where the example lives', () => {
    const err = errorOf(() => loadConfig({ file: '/nonexistent/tidemark.yaml', env: {} }));
    expect(err.code).toBe('CONFIG_NOT_FOUND');
    expect(err.message).toContain('/nonexistent/tidemark.yaml');
    expect(err.hint).toContain('--config');
  });

  it('accepts deploy/tidemark.example.yaml, which documents every option', () => {
    const file = new URL('../../deploy/tidemark.example.yaml', import.meta.url).pathname;
    const config = loadConfig({
      file,
      env: { TIDEMARK_SOURCE_PASSWORD: 'pw', TIDEMARK_MASK_KEY: 'k'.repeat(32) },
    });
    expect(config.source?.columns['chat.users']).toEqual({
      exclude: ['password_hash'],
      mask: { email: 'hash' },
    });
    expect(config.capture.id).toBe('chat-main');
  });

  it('reports YAML syntax errors with the file name', () => {
    const err = errorOf(() => loadConfig({ file: configFile('source: [unclosed'), env: {} }));
    expect(err.message).toMatch(/not valid YAML/);
  });
});
