import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { AlertMetrics, Alerter, type AlertNotice } from './alerts.js';
import { createLogger } from './logger.js';

const body = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => resolve(text));
  });

/** A webhook receiver on loopback answering with the given statuses in turn (then 200). */
async function receiver(statuses: number[]) {
  const got: { notice: AlertNotice; auth: string | undefined; status: number }[] = [];
  const server = createServer((req, res) => {
    void body(req).then((text) => {
      const status = statuses.shift() ?? 200;
      got.push({ notice: JSON.parse(text) as AlertNotice, auth: req.headers.authorization, status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/secret-token`;
  return { got, url, close: () => new Promise<void>((r) => server.close(() => r())) };
}

function setup(webhook?: { url: string; retries?: number }) {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _e, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const registry = new Registry();
  const metrics = new AlertMetrics(registry);
  const alerter = new Alerter({
    service: 'tier',
    config: {
      repeatMinutes: 60,
      ...(webhook
        ? {
            webhook: {
              url: webhook.url,
              headers: { authorization: 'Bearer t0ken' },
              timeoutMs: 2000,
              retries: webhook.retries ?? 3,
            },
          }
        : {}),
    },
    logger: createLogger({ level: 'info', name: 'test', destination }),
    metrics,
  });
  const firing = async (alert: string) =>
    (await registry.getSingleMetric('tidemark_alert_firing')!.get()).values.find(
      (v) => v.labels.alert === alert,
    )?.value;
  return { alerter, lines, registry, firing };
}

const detail = (message: string) => ({ severity: 'critical' as const, message, check: 'the object store' });

describe('Alerter', () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
  });

  it('fires once with a log line, a metric and a webhook POST, retried until delivered, then resolves', async () => {
    const hook = await receiver([500, 503]);
    closers.push(hook.close);
    const { alerter, lines, firing, registry } = setup({ url: hook.url });
    expect(await firing('ArchiveUploadFailing')).toBe(0);
    alerter.update('ArchiveUploadFailing', true, detail('uploads fail for 130 s'));
    alerter.update('ArchiveUploadFailing', true, detail('uploads fail for 131 s')); // still firing: no repeat
    expect(await firing('ArchiveUploadFailing')).toBe(1);
    alerter.update('ArchiveUploadFailing', false, detail('uploads succeed again'));
    alerter.update('ArchiveUploadFailing', false, detail('uploads succeed again'));
    await alerter.close(20_000);
    expect(await firing('ArchiveUploadFailing')).toBe(0);
    // Two failed attempts, then the firing notice; then the resolved one.
    expect(hook.got.map((g) => [g.notice.status, g.status])).toEqual([
      ['firing', 500],
      ['firing', 503],
      ['firing', 200],
      ['resolved', 200],
    ]);
    const first = hook.got[0]!;
    expect(first.auth).toBe('Bearer t0ken');
    expect(first.notice).toMatchObject({
      source: 'tidemark',
      service: 'tier',
      alert: 'ArchiveUploadFailing',
      severity: 'critical',
      message: 'uploads fail for 130 s',
      check: 'the object store',
    });
    expect(hook.got[3]!.notice.message).toBe('uploads succeed again');
    const messages = lines.map((l) => l.msg);
    expect(messages.filter((m) => m === 'alert ArchiveUploadFailing: uploads fail for 130 s')).toHaveLength(
      1,
    );
    expect(messages).toContain('alert ArchiveUploadFailing resolved: uploads succeed again');
    // The webhook's path may hold a token: logs name its origin only.
    expect(JSON.stringify(lines)).not.toContain('secret-token');
    const sent = (await registry.getSingleMetric('tidemark_alert_notifications_total')!.get()).values;
    expect(sent.find((v) => v.labels.status === 'firing' && v.labels.result === 'sent')?.value).toBe(1);
  }, 30_000);

  it('gives up on a notice after its retries and says so, without blocking the alert', async () => {
    const hook = await receiver([500, 500, 500]);
    closers.push(hook.close);
    const { alerter, lines, firing } = setup({ url: hook.url, retries: 1 });
    alerter.update('VerifyFailed', true, detail('the drill found 3 rows that differ'));
    expect(await firing('VerifyFailed')).toBe(1);
    await alerter.close(10_000);
    expect(hook.got).toHaveLength(2);
    expect(lines.map((l) => l.msg)).toContain('alert webhook failed; giving up on this notice');
  }, 30_000);

  it('without a webhook, logs and sets the metric only', async () => {
    const { alerter, lines, firing } = setup();
    alerter.update('SourceSilent', true, { ...detail('no event for 40 s'), severity: 'warning' });
    await alerter.close();
    expect(await firing('SourceSilent')).toBe(1);
    expect(lines.find((l) => l.msg === 'alert SourceSilent: no event for 40 s')?.level).toBe('warn');
  });
});
