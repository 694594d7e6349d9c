// The files under deploy/ that no engine here can run, checked for what can be checked: they parse; every
// tidemark metric an alert or a dashboard panel names is one the daemons export (under that name, with
// those labels); the image is built with the README's own commands and starts the compiled `tidemark`;
// the compose and Kubernetes files run real `tidemark` commands whose configuration validates as each
// container sees it (its environment, its mounted Secret); the probes ask the daemons' own /healthz and
// /metrics on the port the configuration serves them on.

import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { parse, parseAllDocuments } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { CaptureMetrics } from '../capture/metrics.js';
import { loadConfig, type Config } from '../core/index.js';
import { SchedulerMetrics } from '../replay/scheduler.js';
import { TierMetrics } from '../tiering/metrics.js';
import { buildProgram } from './program.js';

const path = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const file = (p: string) => readFileSync(path(p), 'utf8');

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: { severity: string };
  annotations: { summary: string; description: string };
}

/** Every series the three daemons export, with its label names (a histogram as _bucket, _sum, _count). */
function exported(): Map<string, Set<string>> {
  const metrics = new Map<string, Set<string>>();
  for (const registry of [
    new CaptureMetrics().registry,
    new TierMetrics().registry,
    new SchedulerMetrics().registry,
  ]) {
    for (const m of registry.getMetricsAsArray()) {
      const {
        name,
        type,
        labelNames = [],
      } = m as unknown as { name: string; type: string; labelNames?: string[] };
      metrics.set(name, new Set(labelNames));
      if (type === 'histogram') {
        metrics.set(`${name}_bucket`, new Set([...labelNames, 'le']));
        metrics.set(`${name}_sum`, new Set(labelNames));
        metrics.set(`${name}_count`, new Set(labelNames));
      }
    }
  }
  return metrics;
}

/** What a PromQL expression names that the daemons do not export: metrics, selector labels, `by` labels. */
function unknownNames(expr: string, known: Map<string, Set<string>>): string[] {
  const problems: string[] = [];
  const used = [...expr.matchAll(/\b(tidemark_[a-z_]+)/g)].map((m) => m[1] as string);
  for (const [, name, selector] of expr.matchAll(/\b(tidemark_[a-z_]+)(\{[^}]*\})?/g)) {
    if (!known.has(name as string)) problems.push(`${name} is not exported`);
    for (const [, label] of (selector ?? '').matchAll(/([a-z_]+)\s*(?:=~|!=|=)/g)) {
      if (!known.get(name as string)?.has(label as string)) problems.push(`${name} has no label ${label}`);
    }
  }
  for (const [, labels] of expr.matchAll(/by \(([a-z_, ]+)\)/g)) {
    for (const l of (labels as string).split(',').map((x) => x.trim())) {
      if (l !== 'instance' && !used.some((n) => known.get(n)?.has(l))) {
        problems.push(`no metric it uses has label ${l}`);
      }
    }
  }
  return problems;
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
    for (const r of rules) expect(unknownNames(r.expr, known), r.alert).toEqual([]);
  });
});

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: { expr: string; datasource: { uid: string } }[];
  panels?: Panel[];
}

describe('deploy/grafana/tidemark.json', () => {
  const dashboard = JSON.parse(file('deploy/grafana/tidemark.json')) as {
    uid: string;
    title: string;
    schemaVersion: number;
    templating: { list: { name: string; type: string; query: string }[] };
    panels: Panel[];
  };
  const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  const graphs = panels.filter((p) => p.type !== 'row');

  it('is a dashboard whose every panel queries the Prometheus chosen in its datasource variable', () => {
    expect(dashboard).toMatchObject({ uid: 'tidemark', title: 'tidemark' });
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.templating.list).toContainEqual(
      expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }),
    );
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    expect(graphs.length).toBeGreaterThan(20);
    for (const p of graphs) {
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets ?? []) expect(t.datasource.uid, p.title).toBe('${datasource}');
    }
  });

  it('names only metrics and labels the daemons export, and shows every daemon', () => {
    const known = exported();
    const exprs = graphs.flatMap((p) => (p.targets ?? []).map((t) => ({ title: p.title, expr: t.expr })));
    for (const { title, expr } of exprs) expect(unknownNames(expr, known), `${title}: ${expr}`).toEqual([]);
    for (const prefix of [
      'tidemark_capture_',
      'tidemark_tier_hot_',
      'tidemark_tier_cold_',
      'tidemark_snapshot_',
    ]) {
      expect(
        exprs.some((e) => e.expr.includes(prefix)),
        prefix,
      ).toBe(true);
    }
  });
});

/** Instructions of a Dockerfile (continuations joined), split into its stages. */
function dockerfileStages(text: string): { from: string; lines: string[] }[] {
  const instructions = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('#'));
  const stages: { from: string; lines: string[] }[] = [];
  for (const line of instructions) {
    if (line.startsWith('FROM ')) stages.push({ from: line, lines: [] });
    else stages.at(-1)?.lines.push(line);
  }
  return stages;
}

const dockerfile = dockerfileStages(file('deploy/Dockerfile'));
const runtime = dockerfile.at(-1)!;
/** The environment the image gives every container (ENV lines of the runtime stage). */
const imageEnv = Object.fromEntries(
  runtime.lines
    .filter((l) => l.startsWith('ENV '))
    .flatMap((l) => l.slice(4).trim().split(/\s+/))
    .map((kv) => kv.split('=') as [string, string]),
);

describe('deploy/Dockerfile', () => {
  it('builds on node:22-bookworm-slim and runs the compiled CLI from /app as a non-root user', () => {
    expect(dockerfile.map((s) => s.from)).toEqual([
      'FROM node:22-bookworm-slim AS build',
      'FROM node:22-bookworm-slim',
    ]);
    // tsconfig.build.json compiles services/**.ts with tsconfig.json's rootDir and outDir.
    const base = JSON.parse(file('tsconfig.json')) as {
      compilerOptions: { outDir: string; rootDir: string };
    };
    const build = JSON.parse(file('tsconfig.build.json')) as { extends: string; include: string[] };
    expect(build).toMatchObject({ extends: './tsconfig.json', include: ['services/**/*.ts'] });
    expect(base.compilerOptions.rootDir).toBe('.');
    const entry = `/app/${base.compilerOptions.outDir}/services/cli/index.js`;
    expect(runtime.lines).toContain(`ENTRYPOINT ["node", "${entry}"]`);
    expect(runtime.lines).toContain('CMD ["--help"]');
    expect(runtime.lines).toContain('WORKDIR /app');
    // package.json makes dist/ ES modules; schemas/ is found by walking up from dist/services/core.
    for (const copied of ['./package.json', './node_modules/', './dist/services/', './schemas/']) {
      expect(
        runtime.lines.some((l) => l.startsWith('COPY --from=build ') && l.endsWith(` ${copied}`)),
        copied,
      ).toBe(true);
    }
    expect(runtime.lines).toContain('EXPOSE 9464');
    expect(imageEnv).toMatchObject({ TIDEMARK__HTTP__HOST: '0.0.0.0' });
    const user = runtime.lines.filter((l) => l.startsWith('USER ')).at(-1);
    expect(user).toMatch(/^USER [1-9]\d*:[1-9]\d*$/);
  });

  it('installs and compiles with the commands the README gives for building from source', () => {
    const readme = file('README.md');
    const steps = dockerfile
      .flatMap((s) => s.lines)
      .filter((l) => /^RUN (npm|npx) /.test(l))
      .map((l) => l.slice(4));
    expect(steps).toEqual([
      'npm ci --no-audit --no-fund',
      'npx tsc -p tsconfig.build.json',
      'npm prune --omit=dev',
    ]);
    expect(
      steps.filter((step) => !readme.includes(step)),
      'build commands missing from README.md',
    ).toEqual([]);
  });
});

/** The real `tidemark` program. */
function tidemarkProgram(): Promise<Command> {
  return Promise.resolve(buildProgram());
}

/** Checks that `args` run a real subcommand with options it has; returns the --config path. */
function checkCommand(program: Command, args: string[], where: string): string {
  const [name, ...rest] = args;
  const command = program.commands.find((c) => c.name() === name);
  expect(command, `${where}: tidemark has no command ${name}`).toBeDefined();
  const options = new Set(command!.options.flatMap((o) => [o.long, o.short]));
  for (const arg of rest.filter((a) => a.startsWith('-'))) {
    expect(options.has(arg), `${where}: tidemark ${name} has no option ${arg}`).toBe(true);
  }
  const config = rest[rest.indexOf('--config') + 1];
  expect(config, `${where}: no --config`).toMatch(/^\/.+\.yaml$/);
  return config!;
}

const scratch = mkdtempSync(join(tmpdir(), 'tidemark-deploy-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test?: string[]; disable?: boolean };
}

describe('deploy/compose', () => {
  const compose = parse(file('deploy/compose/compose.yaml'), { merge: true }) as {
    services: Record<string, ComposeService>;
  };
  const services = Object.entries(compose.services);
  const dotenv = Object.fromEntries(
    file('deploy/compose/.env.example')
      .split('\n')
      .filter((l) => /^[A-Z][A-Z0-9_]*=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  /** Compose's own interpolation of ${VAR}, ${VAR:?message} and ${VAR:-default} from .env. */
  const interpolate = (value: string) =>
    value.replace(/\$\{([A-Z][A-Z0-9_]*)(?::[?-][^}]*)?\}/g, (_m, name: string) => dotenv[name] ?? '');
  const tidemarks = services.filter(([, s]) => s.build?.dockerfile === 'deploy/Dockerfile');

  it('parses; every service has an image or a build, and waits only for services that can say they are ready', () => {
    expect(services.length).toBeGreaterThan(6);
    for (const [name, s] of services) {
      expect(s.image ?? s.build, name).toBeDefined();
      for (const [dependency, { condition }] of Object.entries(s.depends_on ?? {})) {
        const target = compose.services[dependency];
        expect(target, `${name} depends on ${dependency}`).toBeDefined();
        if (condition === 'service_healthy') expect(target?.healthcheck?.test, dependency).toBeDefined();
        else expect(condition, `${name} → ${dependency}`).toBe('service_completed_successfully');
      }
    }
    for (const [name, s] of tidemarks) {
      expect(s.build, name).toEqual({ context: '../..', dockerfile: 'deploy/Dockerfile' });
    }
  });

  it('has a value in .env.example for every variable it refers to, and no literal secret', () => {
    const strings = (v: unknown): string[] =>
      typeof v === 'string'
        ? [v]
        : typeof v === 'object' && v !== null
          ? Object.values(v).flatMap(strings)
          : [];
    for (const [, name] of strings(compose)
      .join('\n')
      .matchAll(/(?<!\$)\$\{([A-Z][A-Z0-9_]*)/g)) {
      expect(dotenv[name as string], `${name} is not in .env.example`).toBeDefined();
    }
    for (const [, s] of services) {
      for (const [k, v] of Object.entries(s.environment ?? {})) {
        if (/PASSWORD|SECRET|KEY/.test(k)) expect(v, k).toMatch(/^\$\{[A-Z0-9_]+(:[?-][^}]*)?\}$/);
      }
    }
  });

  it('runs real tidemark commands whose mounted configuration validates with the environment they get', async () => {
    const program = await tidemarkProgram();
    const daemons = tidemarks.filter(([, s]) => s.command);
    expect(daemons.map(([n]) => n).sort()).toEqual(['capture', 'scheduler', 'tier']);
    for (const [name, s] of daemons) {
      const configPath = checkCommand(program, s.command!, `compose ${name}`);
      const mount = s.volumes?.map((v) => v.split(':')).find(([, target]) => target === configPath);
      expect(mount, `${name} mounts no ${configPath}`).toBeDefined();
      const env = {
        ...imageEnv,
        ...Object.fromEntries(
          Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))]),
        ),
      };
      const config = loadConfig({ file: path(`deploy/compose/${mount![0]!}`), env });
      expect(config.http.host, name).toBe('0.0.0.0');
      expect(s.ports, name).toEqual([
        expect.stringMatching(new RegExp(`^127\\.0\\.0\\.1:\\d+:${config.http.port}$`)),
      ]);
      expect(s.healthcheck?.test?.join(' '), name).toContain(`127.0.0.1:${config.http.port}/healthz`);
    }
  });
});

interface Container {
  name: string;
  image: string;
  args: string[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef: { name: string; key: string } } }[];
  ports: { name: string; containerPort: number }[];
  readinessProbe?: { httpGet?: { path: string; port: string } };
  livenessProbe?: { httpGet?: { path: string; port: string } };
  securityContext?: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean };
  volumeMounts: { name: string; mountPath: string }[];
}
interface PodTemplate {
  metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    securityContext?: { runAsNonRoot?: boolean };
    containers: Container[];
    volumes: { name: string; configMap?: { name: string }; secret?: { secretName: string } }[];
  };
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  spec?: {
    replicas?: number;
    strategy?: { type: string };
    selector?: Record<string, string> & { matchLabels?: Record<string, string> };
    template?: PodTemplate;
    ports?: { name: string; port: number; targetPort: string }[];
  };
}

describe('deploy/kubernetes', () => {
  const dir = 'deploy/kubernetes';
  const files = readdirSync(path(dir)).filter((f) => f.endsWith('.yaml'));
  const documents = files.map((f) => [f, parseAllDocuments(file(`${dir}/${f}`))] as const);
  const byFile = Object.fromEntries(documents.map(([f, docs]) => [f, docs.map((d) => d.toJS() as Manifest)]));
  const manifests = files.filter((f) => f !== 'kustomization.yaml').flatMap((f) => byFile[f]!);
  const find = (kind: string, name: string) =>
    manifests.find((m) => m.kind === kind && m.metadata.name === name);
  const workloads = manifests.filter((m) => m.kind === 'StatefulSet' || m.kind === 'Deployment');
  const secrets = Object.fromEntries(
    manifests.filter((m) => m.kind === 'Secret').map((m) => [m.metadata.name, m.stringData ?? {}]),
  );

  it('parses into namespace-agnostic manifests, all in kustomization.yaml but the Secret template', () => {
    for (const [f, docs] of documents) for (const d of docs) expect(d.errors, f).toEqual([]);
    for (const m of manifests) {
      expect(m.apiVersion && m.kind && m.metadata.name, JSON.stringify(m).slice(0, 80)).toBeTruthy();
      expect(m.metadata.namespace, m.metadata.name).toBeUndefined();
    }
    const kustomization = byFile['kustomization.yaml']![0] as unknown as { resources: string[] };
    expect([...kustomization.resources].sort()).toEqual(
      files.filter((f) => !/^(kustomization|secret\.)/.test(f)).sort(),
    );
    const values = Object.values(secrets).flatMap((s) => Object.values(s));
    expect(values.length).toBeGreaterThan(0);
    expect(
      values.filter((v) => !v.startsWith('REPLACE-ME')),
      'Secret template values',
    ).toEqual([]);
  });

  it('runs capture as active + standby, tier under a disruption budget, the scheduler alone', () => {
    expect(find('StatefulSet', 'tidemark-capture')?.spec).toMatchObject({
      replicas: 2,
      serviceName: 'tidemark-capture',
    });
    expect(find('Deployment', 'tidemark-tier')?.spec?.replicas).toBeGreaterThanOrEqual(2);
    expect(find('Deployment', 'tidemark-scheduler')?.spec).toMatchObject({
      replicas: 1,
      strategy: { type: 'Recreate' },
    });
    const budget = find('PodDisruptionBudget', 'tidemark-tier');
    expect(budget?.spec?.selector?.matchLabels).toEqual(
      find('Deployment', 'tidemark-tier')?.spec?.selector?.matchLabels,
    );
    // Each daemon has a Service for its metrics, selecting its pods.
    for (const w of workloads) {
      const service = find('Service', w.metadata.name);
      expect(service?.spec?.ports, w.metadata.name).toEqual([
        { name: 'metrics', port: 9464, targetPort: 'metrics' },
      ]);
      expect(w.spec!.template!.metadata.labels).toMatchObject(service!.spec!.selector!);
    }
  });

  it('runs real tidemark commands as non-root, probing /healthz and /metrics on the metrics port', async () => {
    const program = await tidemarkProgram();
    for (const w of workloads) {
      const pod = w.spec!.template!;
      expect(pod.spec.securityContext?.runAsNonRoot, w.metadata.name).toBe(true);
      expect(pod.metadata.annotations).toMatchObject({
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': '9464',
      });
      for (const c of pod.spec.containers) {
        expect(c.image, c.name).toBe('tidemark');
        checkCommand(program, c.args, `${w.metadata.name}/${c.name}`);
        expect(c.ports).toEqual([{ name: 'metrics', containerPort: 9464 }]);
        expect(c.readinessProbe?.httpGet, c.name).toEqual({ path: '/healthz', port: 'metrics' });
        expect(c.livenessProbe?.httpGet, c.name).toEqual({ path: '/metrics', port: 'metrics' });
        expect(c.securityContext, c.name).toMatchObject({
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
        });
      }
    }
  });

  it("validates the ConfigMap's tidemark.yaml as each pod sees it: Secret files mounted, Secret keys in env", async () => {
    const program = await tidemarkProgram();
    for (const w of workloads) {
      const pod = w.spec!.template!;
      for (const c of pod.spec.containers) {
        const where = `${w.metadata.name}/${c.name}`;
        const configPath = checkCommand(program, c.args, where);
        const volume = (name: string) => pod.spec.volumes.find((v) => v.name === name);
        const configMount = c.volumeMounts.find((m) => configPath.startsWith(`${m.mountPath}/`));
        const configMap = find('ConfigMap', volume(configMount!.name)?.configMap?.name ?? '');
        let text = configMap?.data?.[configPath.slice(configMount!.mountPath.length + 1)];
        expect(text, `${where}: ${configPath} is not in a ConfigMap`).toBeDefined();
        const home = join(scratch, w.metadata.name);
        for (const m of c.volumeMounts) {
          const secret = volume(m.name)?.secret;
          if (!secret) continue;
          const values = secrets[secret.secretName];
          expect(values, `${where}: no Secret ${secret.secretName}`).toBeDefined();
          for (const [, key] of text!.matchAll(new RegExp(`${m.mountPath}/([^\\s}]+)`, 'g'))) {
            expect(Object.keys(values!), `${where}: ${m.mountPath}/${key}`).toContain(key);
          }
          mkdirSync(join(home, m.name), { recursive: true });
          for (const [k, v] of Object.entries(values!)) writeFileSync(join(home, m.name, k), v);
          text = text!.replaceAll(`${m.mountPath}/`, `${join(home, m.name)}/`);
        }
        writeFileSync(join(home, 'tidemark.yaml'), text!);
        const env: Record<string, string> = { ...imageEnv };
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef;
          env[e.name] = ref ? secrets[ref.name]![ref.key]! : e.value!;
          expect(env[e.name], `${where}: ${e.name}`).toBeDefined();
        }
        const config: Config = loadConfig({ file: join(home, 'tidemark.yaml'), env });
        expect(config.http, where).toEqual({ host: '0.0.0.0', port: 9464 });
        expect(
          config.replay.tmpDir && c.volumeMounts.some((m) => m.mountPath === config.replay.tmpDir),
          where,
        ).toBe(true);
      }
    }
  });
});
