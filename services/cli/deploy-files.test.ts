// The files under deploy/ that no engine here can run, checked for what can be checked: they parse, and
// every tidemark metric an alert names is one the daemons export (under that name, with those labels).

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { CaptureMetrics } from '../capture/metrics.js';
import { SchedulerMetrics } from '../replay/scheduler.js';
import { TierMetrics } from '../tiering/metrics.js';

const file = (path: string) => readFileSync(fileURLToPath(new URL(`../../${path}`, import.meta.url)), 'utf8');

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: { severity: string };
  annotations: { summary: string; description: string };
}

/** Every metric the three daemons register, with its label names. */
function exported(): Map<string, Set<string>> {
  const metrics = new Map<string, Set<string>>();
  for (const registry of [
    new CaptureMetrics().registry,
    new TierMetrics().registry,
    new SchedulerMetrics().registry,
  ]) {
    for (const m of registry.getMetricsAsArray()) {
      const { name, labelNames = [] } = m as unknown as { name: string; labelNames?: string[] };
      metrics.set(name, new Set(labelNames));
    }
  }
  return metrics;
}

describe('deploy/prometheus/alerts.yaml', () => {
  const groups = (
    parse(file('deploy/prometheus/alerts.yaml')) as { groups: { name: string; rules: Rule[] }[] }
  ).groups;
  const rules = groups.flatMap((g) => g.rules);

  it('is a Prometheus rules file whose every alert has an expression, a severity and a text', () => {
    expect(rules.length).toBeGreaterThan(5);
    for (const r of rules) {
      expect(r.alert, JSON.stringify(r)).toMatch(/^Tidemark[A-Za-z]+$/);
      expect(r.expr.length).toBeGreaterThan(0);
      expect(['warning', 'critical']).toContain(r.labels.severity);
      expect(r.annotations.summary.length).toBeGreaterThan(0);
      expect(r.annotations.description.length).toBeGreaterThan(0);
    }
    expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
  });

  it('names only metrics and labels the daemons export', () => {
    const known = exported();
    for (const r of rules) {
      for (const [, name, selector] of r.expr.matchAll(/\b(tidemark_[a-z_]+)(\{[^}]*\})?/g)) {
        expect(known.has(name as string), `${r.alert}: ${name} is not exported`).toBe(true);
        for (const [, label] of (selector ?? '').matchAll(/([a-z_]+)\s*(?:=~|!=|=)/g)) {
          expect(
            known.get(name as string)?.has(label as string),
            `${r.alert}: ${name} has no label ${label}`,
          ).toBe(true);
        }
      }
      for (const [, label] of r.expr.matchAll(/by \(([a-z_, ]+)\)/g)) {
        for (const l of (label as string).split(',').map((x) => x.trim())) {
          if (l === 'instance') continue;
          const used = [...r.expr.matchAll(/\b(tidemark_[a-z_]+)/g)].map((m) => m[1] as string);
          expect(
            used.some((n) => known.get(n)?.has(l)),
            `${r.alert}: no metric it uses has label ${l}`,
          ).toBe(true);
        }
      }
    }
  });
});
