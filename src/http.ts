import http from 'node:http';
import type net from 'node:net';
import type { Logger } from './log.ts';
import { redact } from './redact.ts';
import { registry, render } from './metrics.ts';

export interface HttpOptions {
  host: string;
  port: number;
}

export interface ReadinessCheck {
  name: string;
  /** Resolves when the dependency answers; rejects (or times out) when it does not. */
  check(): Promise<void>;
}

export interface OpsServer {
  /** host:port actually bound (port 0 in the options picks a free one). */
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

const CHECK_TIMEOUT_MS = 2_000;
/** The paths served (Prometheus' scrape config and the container health checks name them). */
export const PATHS = Object.freeze({ metrics: '/metrics', health: '/health', ready: '/ready' });

function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * The operations endpoint: GET /metrics (Prometheus text format), /health (the process is alive
 * and serving), /ready (every readiness check passes: 200, else 503 with the failing checks).
 * Nothing else is served, and no secret can appear: check failures are redacted.
 */
export async function startOpsServer(opts: HttpOptions, checks: ReadinessCheck[], log: Logger): Promise<OpsServer> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
    };
    if (url.pathname === PATHS.metrics) {
      render().then(
        (text) => { res.writeHead(200, { 'content-type': registry.contentType }).end(text); },
        (err: Error) => {
          log.warn({ err: redact(err.message) }, 'metrics could not be rendered');
          res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics could not be rendered\n');
        },
      );
      return;
    }
    if (url.pathname === PATHS.health) { json(200, { status: 'ok' }); return; }
    if (url.pathname === PATHS.ready) {
      void Promise.all(checks.map(async (c) => {
        try { await withTimeout(c.check(), CHECK_TIMEOUT_MS); return [c.name, 'ok'] as const; } catch (err) {
          return [c.name, redact(`failing: ${(err as Error).message}`)] as const;
        }
      })).then((results) => {
        const ready = results.every(([, r]) => r === 'ok');
        json(ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', checks: Object.fromEntries(results) });
      });
      return;
    }
    json(404, { error: `no such endpoint: ${url.pathname} (expected /metrics, /health or /ready)` });
  });
  server.keepAliveTimeout = 65_000; // longer than Prometheus' scrape interval, so connections are reused
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => { server.off('error', reject); resolve(); });
  });
  const bound = server.address() as net.AddressInfo;
  log.info({ host: bound.address, port: bound.port }, 'operations endpoint listening (/metrics, /health, /ready)');
  return {
    address: { host: bound.address, port: bound.port },
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
