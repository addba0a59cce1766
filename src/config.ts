import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { TickflowError } from './errors.ts';
import { registerSecret } from './redact.ts';
import { clickhouseConfigSchema } from './clickhouse/options.ts';

const VENUES = ['binance', 'oanda', 'polygon', 'ib', 'dukascopy', 'dukascopy-json'] as const;

const instrument = z.string().regex(/^[A-Z0-9.]+(\/[A-Z0-9.]+)?$/, 'a canonical instrument such as BTC/USDT or AAPL');

const feedSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9-]+$/, 'lowercase letters, digits and dashes'),
  venue: z.enum(VENUES),
  enabled: z.boolean().default(true),
  channels: z.array(z.string().min(1)).min(1),
  instruments: z.array(instrument).min(1),
  urls: z.strictObject({
    ws: z.url().optional(),
    rest: z.url().optional(),
    stream: z.url().optional(),
  }).default({}),
  /** Seconds without any frame before a connection is treated as dead. */
  staleAfterSeconds: z.number().positive().max(600).default(15),
  /** Rotate a connection this long after it opened (before the venue's forced disconnect). */
  rotateAfterSeconds: z.number().positive().optional(),
  /** The venue account the feed reads through (OANDA: the v20 account id in the pricing-stream path); not a secret. */
  account: z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'letters, digits and dashes (an OANDA account id such as 101-004-1234567-001)').optional(),
  /** Interactive Brokers: the TWS or IB Gateway API socket, and the client ids this process uses there. */
  tws: z.strictObject({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(1).max(65535).default(4001),
    clientId: z.number().int().min(0).max(2147483647).default(17),
    /** Client id of history jobs (a second connection); clientId + 1 by default. */
    historyClientId: z.number().int().min(0).max(2147483647).optional(),
    /** IBKR allows one tick-by-tick request per instrument per 15 s; a resubscription waits that long. */
    tickByTickSpacingMs: z.number().int().min(0).max(600_000).default(15_000),
    /** A request refused for lack of market-data permission (10089, 354) is asked again this often. */
    permissionRetrySeconds: z.number().positive().max(86_400).default(600),
  }).optional(),
});

const configSchema = z.strictObject({
  dataDir: z.string().default('./data'),
  database: z.strictObject({
    embeddedPort: z.number().int().min(1024).max(65535).default(54329),
    /** Whether the embedded server syncs to disk; off only for throwaway test databases. */
    embeddedFsync: z.boolean().default(true),
  }).default({ embeddedPort: 54329, embeddedFsync: true }),
  landing: z.strictObject({
    maxBatchFrames: z.number().int().min(1).max(100_000).default(5000),
    flushIntervalMs: z.number().int().min(1).max(10_000).default(20),
    maxBufferedBytes: z.number().int().min(1_000_000).default(64 * 1024 * 1024),
  }).default({ maxBatchFrames: 5000, flushIntervalMs: 20, maxBufferedBytes: 64 * 1024 * 1024 }),
  retention: z.strictObject({
    stagingDays: z.number().int().min(1).default(30),
    ticksDays: z.number().int().min(1).default(365),
  }).default({ stagingDays: 30, ticksDays: 365 }),
  bars: z.strictObject({
    engine: z.enum(['auto', 'timescale', 'rollup']).default('auto'),
  }).default({ engine: 'auto' }),
  clickhouse: clickhouseConfigSchema.prefault({}),
  worker: z.strictObject({
    concurrency: z.number().int().min(1).max(64).default(4),
  }).default({ concurrency: 4 }),
  /** The operations endpoint: /metrics (Prometheus), /health, /ready. Port 0 picks a free port. */
  metrics: z.strictObject({
    enabled: z.boolean().default(true),
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(9464),
  }).default({ enabled: true, host: '127.0.0.1', port: 9464 }),
  // A feed's name keys its sessions, gaps and status rows: two feeds of one name would close each other's sessions.
  feeds: z.array(feedSchema).default([]).superRefine((feeds, ctx) => {
    const first = new Map<string, number>();
    feeds.forEach((feed, i) => {
      const earlier = first.get(feed.name);
      if (earlier === undefined) first.set(feed.name, i);
      else ctx.addIssue({ code: 'custom', path: [i, 'name'], input: feed.name, message: `a name no other feed has (feeds.${earlier} has it)` });
    });
  }),
});

export type FeedConfig = z.infer<typeof feedSchema>;
export type Config = Readonly<z.infer<typeof configSchema> & {
  databaseUrl: string | undefined;
  clickhouseUrl: string | undefined;
  secrets: Readonly<Record<string, string>>;
}>;

/** The default: Binance spot BTC/USDT and ETH/USDT trades, best bid/ask and depth; no key needed. */
export const DEFAULT_FEEDS: FeedConfig[] = [{
  name: 'binance-spot',
  venue: 'binance',
  enabled: true,
  channels: ['trade', 'bookTicker', 'depth'],
  instruments: ['BTC/USDT', 'ETH/USDT'],
  urls: { ws: 'wss://stream.binance.com:9443', rest: 'https://api.binance.com' },
  staleAfterSeconds: 15,
  rotateAfterSeconds: 23 * 3600,
}];

const SECRET_KEY = /(token|secret|password|apikey|api_key|credential)/i;
const SECRET_ENV = ['OANDA_TOKEN', 'POLYGON_API_KEY', 'IB_ACCOUNT'] as const;

function findSecretKeys(value: unknown, at: string[] = []): string[] {
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => {
    const here = [...at, k];
    return SECRET_KEY.test(k) ? [here.join('.')] : findSecretKeys(v, here);
  });
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Reads a secret from NAME or from the file named by NAME_FILE. */
function readSecret(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const file = env[`${name}_FILE`];
  if (file) return readFileSync(file, 'utf8').trim();
  return env[name] || undefined;
}

export interface LoadOptions {
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Overrides applied on top of the file (tests build their own config this way). */
  overrides?: Record<string, unknown>;
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.TICKFLOW_CONFIG ?? (existsSync('tickflow.config.json') ? 'tickflow.config.json' : undefined);
  let raw: Record<string, unknown> = {};
  if (file) {
    try {
      raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new TickflowError('CONFIG_INVALID', `config file ${file}: expected readable JSON, received ${(err as Error).message}`, { cause: err });
    }
    const secretKeys = findSecretKeys(raw);
    if (secretKeys.length > 0) {
      throw new TickflowError('CONFIG_SECRET_IN_FILE',
        `config file ${file}: key ${secretKeys.join(', ')} looks like a secret; secrets come only from the environment (or NAME_FILE), never from the config file`);
    }
  }
  const merged: Record<string, unknown> = { ...raw, ...opts.overrides };
  if (env.TICKFLOW_DATA_DIR) merged.dataDir = env.TICKFLOW_DATA_DIR;
  if (env.TICKFLOW_METRICS_HOST || env.TICKFLOW_METRICS_PORT) {
    const m = { ...(merged.metrics as Record<string, unknown> | undefined) };
    if (env.TICKFLOW_METRICS_HOST) m.host = env.TICKFLOW_METRICS_HOST;
    if (env.TICKFLOW_METRICS_PORT) m.port = Number(env.TICKFLOW_METRICS_PORT);
    merged.metrics = m;
  }
  if (merged.feeds === undefined) merged.feeds = DEFAULT_FEEDS;

  const parsed = configSchema.safeParse(merged, { reportInput: true });
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const key = issue.path.join('.') || '(root)';
      const received = 'input' in issue ? describe(issue.input) : 'an invalid value';
      return `${key}: expected ${issue.message.replace(/^Invalid input: expected /, '')}, received ${received}`;
    });
    throw new TickflowError('CONFIG_INVALID', `invalid configuration${file ? ` (${file})` : ''}:\n  ${lines.join('\n  ')}`);
  }
  const secrets: Record<string, string> = {};
  for (const name of SECRET_ENV) {
    const value = readSecret(env, name);
    if (value) { secrets[name] = value; registerSecret(value); }
  }
  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl) { try { registerSecret(new URL(databaseUrl).password); } catch { /* not a URL: postgres.js reports it */ } }
  const config = {
    ...parsed.data,
    dataDir: path.resolve(parsed.data.dataDir),
    databaseUrl,
    clickhouseUrl: env.CLICKHOUSE_URL || undefined,
    secrets: Object.freeze(secrets),
  };
  return deepFreeze(config);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
