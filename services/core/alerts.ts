// Alerts a daemon raises by itself: each is a log line, a metric (tidemark_alert_firing{alert}) and, when
// alerts.webhook is configured, a JSON POST retried with backoff — once when it starts firing, again every
// alerts.repeatMinutes while it fires, and once when it is resolved. The message says what to check.

import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from './logger.js';
import { sleep } from './sleep.js';

export type AlertName =
  | 'SourceSilent'
  | 'CaptureLagging'
  | 'ArchiveUploadFailing'
  | 'HotReplicaFailing'
  | 'SnapshotOverdue'
  | 'VerifyFailed';

export const ALERT_NAMES: readonly AlertName[] = [
  'SourceSilent',
  'CaptureLagging',
  'ArchiveUploadFailing',
  'HotReplicaFailing',
  'SnapshotOverdue',
  'VerifyFailed',
];

export interface WebhookConfig {
  url: string;
  headers: Record<string, string>;
  timeoutMs: number;
  retries: number;
}

export interface AlertsConfig {
  webhook?: WebhookConfig | undefined;
  repeatMinutes: number;
}

export interface AlertDetail {
  severity: 'warning' | 'critical';
  /** What is wrong, with the figures. */
  message: string;
  /** What to check or do about it. */
  check: string;
}

/** The alert metrics, registered with a daemon's own registry. */
export class AlertMetrics {
  readonly firing: Gauge;
  readonly notifications: Counter;

  constructor(registry: Registry) {
    this.firing = new Gauge({
      name: 'tidemark_alert_firing',
      help: '1 while the alert fires, by alert name',
      labelNames: ['alert'],
      registers: [registry],
    });
    this.notifications = new Counter({
      name: 'tidemark_alert_notifications_total',
      help: 'Webhook notifications by alert, status (firing, resolved) and result (sent, failed)',
      labelNames: ['alert', 'status', 'result'],
      registers: [registry],
    });
  }
}

/** The body POSTed to alerts.webhook. */
export interface AlertNotice {
  source: 'tidemark';
  service: string;
  alert: AlertName;
  status: 'firing' | 'resolved';
  severity: AlertDetail['severity'];
  message: string;
  check: string;
  startedAt: string;
  at: string;
}

interface Active {
  detail: AlertDetail;
  startedMs: number;
  notifiedMs: number;
}

export class Alerter {
  private readonly active = new Map<AlertName, Active>();
  /** Notifications go out one after another, in the order raised. */
  private queue: Promise<void> = Promise.resolve();
  private readonly stopping = new AbortController();

  constructor(
    private readonly o: {
      service: string;
      config: AlertsConfig;
      logger: Logger;
      metrics: AlertMetrics;
      fetch?: typeof fetch;
    },
  ) {
    for (const name of ALERT_NAMES) o.metrics.firing.set({ alert: name }, 0);
  }

  isFiring(name: AlertName): boolean {
    return this.active.has(name);
  }

  /** Sets whether the alert fires now; a change (or a due repeat) logs and notifies, the rest is free. */
  update(name: AlertName, firing: boolean, detail: AlertDetail): void {
    const now = Date.now();
    const was = this.active.get(name);
    if (firing) {
      if (!was) {
        const a: Active = { detail, startedMs: now, notifiedMs: now };
        this.active.set(name, a);
        this.o.metrics.firing.set({ alert: name }, 1);
        this.o.logger[detail.severity === 'critical' ? 'error' : 'warn'](
          { alert: name, severity: detail.severity, check: detail.check },
          `alert ${name}: ${detail.message}`,
        );
        this.notify(name, 'firing', a);
        return;
      }
      was.detail = detail;
      const repeatMs = this.o.config.repeatMinutes * 60_000;
      if (repeatMs > 0 && now - was.notifiedMs >= repeatMs) {
        was.notifiedMs = now;
        this.o.logger.warn(
          { alert: name, check: detail.check },
          `alert ${name} still firing: ${detail.message}`,
        );
        this.notify(name, 'firing', was);
      }
      return;
    }
    if (!was) return;
    this.active.delete(name);
    this.o.metrics.firing.set({ alert: name }, 0);
    this.o.logger.info({ alert: name }, `alert ${name} resolved: ${detail.message}`);
    this.notify(name, 'resolved', { ...was, detail: { ...was.detail, message: detail.message } });
  }

  private notify(name: AlertName, status: AlertNotice['status'], a: Active): void {
    const hook = this.o.config.webhook;
    if (!hook) return;
    const notice: AlertNotice = {
      source: 'tidemark',
      service: this.o.service,
      alert: name,
      status,
      severity: a.detail.severity,
      message: a.detail.message,
      check: a.detail.check,
      startedAt: new Date(a.startedMs).toISOString(),
      at: new Date().toISOString(),
    };
    this.queue = this.queue.then(() => this.send(hook, notice));
  }

  private async send(hook: WebhookConfig, notice: AlertNotice): Promise<void> {
    const post = this.o.fetch ?? fetch;
    // The URL may carry a token: only its origin is logged.
    const where = new URL(hook.url).origin;
    let backoff = 1000;
    for (let attempt = 1; attempt <= hook.retries + 1; attempt++) {
      try {
        const res = await post(hook.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...hook.headers },
          body: JSON.stringify(notice),
          signal: AbortSignal.timeout(hook.timeoutMs),
        });
        if (res.ok) {
          this.o.metrics.notifications.inc({ alert: notice.alert, status: notice.status, result: 'sent' });
          return;
        }
        throw new Error(`HTTP ${res.status} ${res.statusText}`);
      } catch (err) {
        const last = attempt > hook.retries || this.stopping.signal.aborted;
        this.o.logger.warn(
          { alert: notice.alert, webhook: where, attempt, err: (err as Error).message },
          last ? 'alert webhook failed; giving up on this notice' : 'alert webhook failed; retrying',
        );
        if (last) break;
        await sleep(backoff, this.stopping.signal);
        backoff = Math.min(backoff * 2, 30_000);
      }
    }
    this.o.metrics.notifications.inc({ alert: notice.alert, status: notice.status, result: 'failed' });
  }

  /** Waits (bounded) for notifications still on their way; retries stop early. */
  async close(timeoutMs = 5000): Promise<void> {
    const timer = setTimeout(() => this.stopping.abort(), timeoutMs);
    try {
      await this.queue;
    } finally {
      clearTimeout(timer);
    }
  }
}
