import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import yaml from 'js-yaml';
import { loadConfig } from '../src/config.ts';
import { PATHS } from '../src/http.ts';

// docker-compose.yml cannot run here (no Docker engine), so its configuration is checked as far
// as files allow: every config file parses, names and ports agree between services, the scrape
// target is the metrics endpoint tickflow serves, and secrets come from the uncommitted .env.
const ROOT = path.join(import.meta.dirname, '..');
const read = (p: string) => readFileSync(path.join(ROOT, p), 'utf8');
const load = <T>(p: string) => yaml.load(read(p)) as T;

interface Service {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  secrets?: string[];
  ports?: string[];
  healthcheck?: { test?: string[]; disable?: boolean };
  depends_on?: Record<string, { condition: string }>;
  restart?: string;
}
interface Compose { services: Record<string, Service>; volumes: Record<string, unknown>; secrets: Record<string, { environment: string }> }

const compose = load<Compose>('docker-compose.yml');
const services = compose.services;
const prometheus = load<{ scrape_configs: { job_name: string; metrics_path: string; static_configs: { targets: string[] }[] }[] }>(
  'dashboards/prometheus/prometheus.yml');
const datasources = load<{ datasources: { uid: string; type: string; url?: string; user?: string;
  jsonData: Record<string, unknown>; secureJsonData?: Record<string, string> }[] }>('dashboards/provisioning/datasources/tickflow.yaml');
const providers = load<{ providers: { options: { path: string } }[] }>('dashboards/provisioning/dashboards/tickflow.yaml');
const dashboards = readdirSync(path.join(ROOT, 'dashboards')).filter((f) => f.endsWith('.json'));

/** host:port of a container port published as "127.0.0.1:8123:8123" (the container side). */
const containerPorts = (s: Service) => (s.ports ?? []).map((p) => Number(p.split(':').at(-1)));
/** Mount source (relative to the repository) -> target inside the container. */
const mounts = (s: Service) => new Map((s.volumes ?? []).map((v) => { const [src, dst] = v.split(':'); return [src!, dst!]; }));
/** ${VAR...} placeholders of a compose value, replaced by a sample so the value can be parsed. */
const interpolate = (v: string) => v.replace(/\$\{([A-Z_]+)[^}]*\}/g, (_, name: string) => `sample-${name.toLowerCase()}`);

describe('docker-compose.yml and the services\' config files', () => {
  it('parses, and every service has a health check, a restart policy and declared volumes', () => {
    expect(Object.keys(services).sort()).toEqual(
      ['clickhouse', 'grafana', 'prometheus', 'tickflow-ingest', 'tickflow-migrate', 'tickflow-worker', 'timescaledb']);
    for (const [name, s] of Object.entries(services)) {
      if (name === 'tickflow-migrate') {
        expect(s.restart).toBe('no'); // a one-shot job; the others wait for it to succeed
        continue;
      }
      expect(s.healthcheck?.test, name).toBeDefined();
      expect(s.restart, name).toBe('unless-stopped');
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        expect(services[dep], `${name} depends on ${dep}`).toBeDefined();
        expect(condition).toBe(dep === 'tickflow-migrate' ? 'service_completed_successfully' : 'service_healthy');
      }
    }
    const used = new Set(Object.values(services).flatMap((s) => [...mounts(s).keys()].filter((src) => !src.startsWith('.'))));
    expect([...used].sort()).toEqual(Object.keys(compose.volumes).sort());
    for (const s of Object.values(services)) {
      for (const src of mounts(s).keys()) {
        if (src.startsWith('./')) expect(() => readdirSync(path.dirname(path.join(ROOT, src))), src).not.toThrow();
      }
    }
  });

  it('Prometheus scrapes the metrics endpoint of both tickflow processes at the port they listen on', () => {
    const [job] = prometheus.scrape_configs;
    expect(job!.metrics_path).toBe(PATHS.metrics);
    const targets = job!.static_configs.flatMap((c) => c.targets);
    expect(targets.sort()).toEqual(['tickflow-ingest:9464', 'tickflow-worker:9464']);
    for (const target of targets) {
      const [host, port] = target.split(':');
      const s = services[host!]!;
      // The process's own config, built from the container's environment, listens there.
      const env = Object.fromEntries(Object.entries(s.environment!).map(([k, v]) => [k, interpolate(String(v))]));
      delete env.TICKFLOW_CONFIG; delete env.OANDA_TOKEN_FILE; delete env.POLYGON_API_KEY_FILE;
      const config = loadConfig({ env, overrides: { feeds: [] } });
      expect(config.metrics).toMatchObject({ enabled: true, host: '0.0.0.0', port: Number(port) });
      expect(s.healthcheck!.test!.join(' ')).toContain(`http://127.0.0.1:${port}${PATHS.ready}`);
    }
    expect(services.prometheus!.volumes).toContain('./dashboards/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
  });

  it('each tickflow process logs in as its own database role and runs its half', () => {
    const user = (s: Service) => new URL(interpolate(s.environment!.DATABASE_URL!)).username;
    expect(user(services['tickflow-ingest']!)).toBe('tickflow_ingester');
    expect(services['tickflow-ingest']!.command).toEqual(['node', 'bin/tickflow.js', 'start', '--only', 'ingest']);
    expect(user(services['tickflow-worker']!)).toBe('tickflow_worker');
    expect(services['tickflow-worker']!.command).toEqual(['node', 'bin/tickflow.js', 'start', '--only', 'worker']);
    expect(user(services['tickflow-migrate']!)).toBe('tickflow');
    expect(services['tickflow-migrate']!.command!.join(' ')).toMatch(/bin\/tickflow\.js migrate$/);
    // The ingester has no ClickHouse: the worker syncs it.
    expect(services['tickflow-ingest']!.environment!.CLICKHOUSE_URL).toBeUndefined();
    expect(new URL(interpolate(services['tickflow-worker']!.environment!.CLICKHOUSE_URL!)).host).toBe(`clickhouse:${containerPorts(services.clickhouse!)[0]}`);
    // The login roles the database init script creates are the roles the migration grants to.
    const init = read('migrations/postgres-init/10-tickflow-roles.sh');
    const migration = read('migrations/postgres/20261121018800_roles.sql');
    for (const role of ['tickflow_ingester', 'tickflow_worker', 'tickflow_grafana']) {
      expect(init).toContain(`create role ${role} login password`);
      expect(migration).toContain(`'${role}'`);
      expect(services.timescaledb!.secrets).toContain(`${role}_password`);
    }
    expect(mounts(services.timescaledb!).get('./migrations/postgres-init/10-tickflow-roles.sh'))
      .toBe('/docker-entrypoint-initdb.d/10-tickflow-roles.sh');
  });

  it('Grafana gets the datasources and dashboards, and every panel names a provisioned datasource', () => {
    const g = mounts(services.grafana!);
    expect(g.get('./dashboards/provisioning/datasources')).toBe('/etc/grafana/provisioning/datasources');
    expect(g.get('./dashboards/provisioning/dashboards')).toBe('/etc/grafana/provisioning/dashboards');
    expect(g.get('./dashboards')).toBe(providers.providers[0]!.options.path);
    const byUid = new Map(datasources.datasources.map((d) => [d.uid, d]));
    const pg = byUid.get('tickflow-postgres')!;
    expect(pg.url).toBe(`timescaledb:${containerPorts(services.timescaledb!)[0]}`);
    expect(pg.user).toBe('tickflow_grafana');
    expect(pg.jsonData.database).toBe(services.timescaledb!.environment!.POSTGRES_DB);
    const ch = byUid.get('tickflow-clickhouse')!;
    expect(`${ch.jsonData.host}:${ch.jsonData.port}`).toBe(`clickhouse:${containerPorts(services.clickhouse!)[0]}`);
    expect(ch.jsonData.defaultDatabase).toBe(services.clickhouse!.environment!.CLICKHOUSE_DB);
    expect(ch.jsonData.username).toBe('grafana');
    const prom = byUid.get('tickflow-prometheus')!;
    expect(prom.url).toBe(`http://prometheus:${containerPorts(services.prometheus!)[0]}`);
    // Passwords come from secrets mounted into Grafana, never from the file.
    for (const d of datasources.datasources) {
      for (const v of Object.values(d.secureJsonData ?? {})) {
        const m = /^\$__file\{\/run\/secrets\/([a-z_]+)\}$/.exec(v);
        expect(m, `${d.uid} password`).not.toBeNull();
        expect(services.grafana!.secrets).toContain(m![1]);
      }
    }
    // The read-only ClickHouse user Grafana logs in as, with its password from the environment.
    const xml = read('dashboards/clickhouse/grafana-user.xml');
    expect(xml).toMatch(/<grafana>[\s\S]*<password from_env="CLICKHOUSE_GRAFANA_PASSWORD"\/>[\s\S]*<\/grafana>/);
    expect(xml).toMatch(/<readonly>1<\/readonly>/);
    expect(services.clickhouse!.environment!.CLICKHOUSE_GRAFANA_PASSWORD).toBeDefined();
    expect(mounts(services.clickhouse!).get('./dashboards/clickhouse/grafana-user.xml')).toBe('/etc/clickhouse-server/users.d/grafana-user.xml');
    expect(dashboards.sort()).toEqual(['ingestion.json', 'market.json', 'overview.json', 'quality.json']);
    for (const file of dashboards) {
      const d = JSON.parse(read(`dashboards/${file}`)) as { uid: string; panels: { title: string; datasource: { uid: string; type: string };
        targets: { datasource: { uid: string } }[] }[]; templating: { list: { datasource?: { uid: string } }[] } };
      expect(d.uid).toBe(`tickflow-${file.replace('.json', '')}`);
      for (const p of d.panels) {
        expect(byUid.get(p.datasource.uid)?.type, `${file}: ${p.title}`).toBe(p.datasource.type);
        for (const t of p.targets) expect(t.datasource.uid).toBe(p.datasource.uid);
      }
      for (const v of d.templating.list) if (v.datasource) expect(byUid.has(v.datasource.uid)).toBe(true);
    }
  });

  it('secrets come from the uncommitted .env: every one is declared, listed in .env.example, and .env is ignored by git', () => {
    const example = read('.env.example');
    const exampleVars = new Map([...example.matchAll(/^([A-Z_]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
    for (const [name, s] of Object.entries(compose.secrets)) {
      expect(exampleVars.has(s.environment), name).toBe(true);
    }
    for (const s of Object.values(services)) for (const secret of s.secrets ?? []) expect(compose.secrets[secret], secret).toBeDefined();
    // Every ${VAR} the file interpolates is in the example, and the example holds no real value.
    const interpolated = new Set([...read('docker-compose.yml').matchAll(/\$\{([A-Z_]+)/g)].map((m) => m[1]!));
    for (const v of interpolated) expect(exampleVars.has(v), v).toBe(true);
    for (const [k, v] of exampleVars) expect(['', 'change-me'], k).toContain(v);
    expect(execFileSync('git', ['check-ignore', '.env'], { cwd: ROOT }).toString().trim()).toBe('.env');
    // No secret is written into a service's environment as a literal.
    for (const s of Object.values(services)) {
      for (const [k, v] of Object.entries(s.environment ?? {})) {
        if (/PASSWORD|TOKEN|API_KEY/.test(k) && !k.endsWith('_FILE')) expect(String(v), k).toMatch(/^\$\{[A-Z_]+/);
      }
    }
  });
});

describe('dependency hygiene', () => {
  it('the lockfile is committed and matches package.json, and CI audits production dependencies', () => {
    expect(execFileSync('git', ['ls-files', '--error-unmatch', 'package-lock.json'], { cwd: ROOT }).toString().trim()).toBe('package-lock.json');
    const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    const lock = JSON.parse(read('package-lock.json')) as { lockfileVersion: number;
      packages: Record<string, { version?: string; dependencies?: Record<string, string>; devDependencies?: Record<string, string> }> };
    expect(lock.lockfileVersion).toBeGreaterThanOrEqual(3);
    expect(lock.packages['']!.dependencies).toEqual(pkg.dependencies);
    expect(lock.packages['']!.devDependencies).toEqual(pkg.devDependencies);
    for (const name of Object.keys(pkg.dependencies)) expect(lock.packages[`node_modules/${name}`]?.version, name).toBeDefined();
    const ci = read('.ci/run').split('\n').filter((l) => !l.startsWith('#'));
    const install = ci.findIndex((l) => l.startsWith('npm ci '));
    const audit = ci.findIndex((l) => l.includes('npm audit --omit=dev --audit-level=high'));
    expect(install).toBeGreaterThanOrEqual(0);
    expect(audit).toBeGreaterThan(install);
    expect(ci).toContain('set -euo pipefail');
    // A finding fails the build (only a registry without the advisory endpoint is let through).
    expect(ci.slice(audit).some((l) => /exit \$audit_rc|^npm audit/.test(l.trim()))).toBe(true);
  });
});
