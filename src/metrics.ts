import client from 'prom-client';
import type { Sql } from './db.ts';
import type { Logger } from './log.ts';
import type { BatchResult, OpsEvent } from '../ingesters/runtime/lander.ts';

/**
 * Prometheus metrics of one tickflow process, served on /metrics (src/http.ts).
 *
 * Names follow the Prometheus conventions: a tickflow_ prefix, the unit in the name (_seconds,
 * _frames), _total on counters. Labels only take values from a bounded set: feed names come from
 * the config, venues and job tasks from the code, gap and event kinds from SQL check constraints;
 * anything a venue sends (stream names) is capped by boundedLabel(). Never an instrument, a URL
 * or an error message as a label.
 *
 * Metrics that live in Postgres (open gaps, quarantine, normalization lag, ClickHouse lag,
 * quality findings, job queue) are read on scrape through one short query per source, cached for
 * a few seconds, with a statement timeout, so a scrape never loads the database.
 *
 * The registry is per process, like prom-client's default one, so code anywhere (jobs, the
 * backfill engine, quality alerts) can import a metric from here and update it.
 */
export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry });

const LABEL_CAP = 64;
const seen = new Map<string, Set<string>>();

/** A label value from a set that must stay bounded: past LABEL_CAP distinct values, "other". */
export function boundedLabel(name: string, value: string): string {
  let values = seen.get(name);
  if (!values) { values = new Set(); seen.set(name, values); }
  if (values.has(value)) return value;
  if (values.size >= LABEL_CAP || !/^[A-Za-z0-9_.:@/-]{1,64}$/.test(value)) return 'other';
  values.add(value);
  return value;
}

// Ingest: frames, batches, latency.
export const framesLanded = new client.Counter({
  name: 'tickflow_frames_landed_total',
  help: 'Frames (raw venue messages) committed to staging.frames, by venue and stream.',
  labelNames: ['venue', 'stream'] as const,
  registers: [registry],
});
export const landingBatchFrames = new client.Histogram({
  name: 'tickflow_landing_batch_frames',
  help: 'Frames per committed landing batch.',
  buckets: [1, 5, 10, 50, 100, 500, 1000, 2500, 5000, 10000, 50000],
  registers: [registry],
});
export const landingLatency = new client.Histogram({
  name: 'tickflow_landing_latency_seconds',
  help: 'Receive to committed: from the moment a frame was read off the socket to the commit of its batch (normalized in the same transaction).',
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
});
export const landingCommit = new client.Histogram({
  name: 'tickflow_landing_commit_seconds',
  help: 'Duration of the landing transaction of a batch (COPY, ops events, inline normalization).',
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
  registers: [registry],
});
export const landingRetries = new client.Counter({
  name: 'tickflow_landing_retries_total',
  help: 'Landing attempts that failed and were retried with the same batch id.',
  registers: [registry],
});
export const landingBuffered = new client.Gauge({
  name: 'tickflow_landing_buffered_frames',
  help: 'Frames accepted by the landing writer and not yet committed.',
  registers: [registry],
});
export const normalizedRows = new client.Counter({
  name: 'tickflow_normalized_rows_total',
  help: 'Normalization results of landed batches by kind (the keys of ops.batches.counts: trades, quotes, duplicates, quarantined, ...).',
  labelNames: ['kind'] as const,
  registers: [registry],
});

// Feeds.
export const FEED_STATES = ['idle', 'connecting', 'connected', 'backoff', 'circuit_open', 'stopped'] as const;
export const feedUp = new client.Gauge({
  name: 'tickflow_feed_up',
  help: '1 while the feed has a connection delivering data, else 0.',
  labelNames: ['feed', 'venue'] as const,
  registers: [registry],
});
export const feedState = new client.Gauge({
  name: 'tickflow_feed_state',
  help: 'The feed\'s connection state (1 for the current state, 0 for the others).',
  labelNames: ['feed', 'venue', 'state'] as const,
  registers: [registry],
});
export const feedMessages = new client.Counter({
  name: 'tickflow_feed_messages_total',
  help: 'Data frames received by the feed (acks, heartbeats and errors excluded).',
  labelNames: ['feed', 'venue'] as const,
  registers: [registry],
});
export const feedLastMessageAge = new client.Gauge({
  name: 'tickflow_feed_last_message_age_seconds',
  help: 'Seconds since the feed last received a data frame (absent before the first one).',
  labelNames: ['feed', 'venue'] as const,
  registers: [registry],
});
export const feedReconnects = new client.Counter({
  name: 'tickflow_feed_reconnects_total',
  help: 'Reconnections scheduled after a connection ended unexpectedly (rotations are not reconnects).',
  labelNames: ['feed', 'venue'] as const,
  registers: [registry],
});
export const CONNECTOR_ERROR_KINDS = ['error_frame', 'stale', 'sequence_break', 'resync', 'circuit_open', 'connection_error', 'venue_closed'] as const;
export const connectorErrors = new client.Counter({
  name: 'tickflow_connector_errors_total',
  help: 'Connector errors by kind: error_frame (the venue answered with an error, or a REST snapshot failed), stale (silence past the watchdog), '
    + 'sequence_break, resync, circuit_open, connection_error (socket error), venue_closed (the venue closed the connection).',
  labelNames: ['feed', 'venue', 'kind'] as const,
  registers: [registry],
});
export const feedDisconnects = new client.Counter({
  name: 'tickflow_feed_disconnects_total',
  help: 'Connections ended, by reason class: shutdown, rotated, stale, error, venue_closed, other.',
  labelNames: ['feed', 'venue', 'reason'] as const,
  registers: [registry],
});

// Jobs.
export const jobDuration = new client.Histogram({
  name: 'tickflow_job_duration_seconds',
  help: 'Duration of graphile-worker job runs by task and outcome (success, error).',
  labelNames: ['task', 'outcome'] as const,
  buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800],
  registers: [registry],
});
export const jobFailures = new client.Counter({
  name: 'tickflow_job_failures_total',
  help: 'Job runs that threw: final="false" will be retried, final="true" used up the job\'s attempts.',
  labelNames: ['task', 'final'] as const,
  registers: [registry],
});

// For the backfill engine and the quality checks to update where the event happens.
export const rateLimitWait = new client.Counter({
  name: 'tickflow_rate_limit_wait_seconds_total',
  help: 'Seconds spent waiting for a venue\'s request budget (rate limits, Retry-After, bans).',
  labelNames: ['venue'] as const,
  registers: [registry],
});
export const rateLimitWaits = new client.Counter({
  name: 'tickflow_rate_limit_waits_total',
  help: 'Requests that had to wait for a venue\'s request budget.',
  labelNames: ['venue'] as const,
  registers: [registry],
});
export const qualityAlerts = new client.Counter({
  name: 'tickflow_quality_alerts_total',
  help: 'Quality findings that crossed their alert threshold, by kind and severity.',
  labelNames: ['kind', 'severity'] as const,
  registers: [registry],
});

// Read from Postgres on scrape.
export const gaps = new client.Gauge({
  name: 'tickflow_gaps',
  help: 'Gaps in the ledger (quality.gaps) by venue and state; detected, queued and recovering are open.',
  labelNames: ['venue', 'state'] as const,
  registers: [registry],
});
export const quarantined = new client.Gauge({
  name: 'tickflow_quarantined_payloads',
  help: 'Payloads (or items of one) in staging.quarantine, by venue; quarantine is never deleted, so this only grows.',
  labelNames: ['venue'] as const,
  registers: [registry],
});
export const normalizationPending = new client.Gauge({
  name: 'tickflow_normalization_pending_batches',
  help: 'Landed batches not normalized yet (inline normalization failed or was deferred).',
  registers: [registry],
});
export const normalizationLag = new client.Gauge({
  name: 'tickflow_normalization_lag_seconds',
  help: 'Age of the oldest landed batch that is not normalized yet (0 when none waits).',
  registers: [registry],
});
export const clickhouseLag = new client.Gauge({
  name: 'tickflow_clickhouse_sync_lag_seconds',
  help: 'ClickHouse sync lag per stream (ops.clickhouse_lag): seconds since the point up to which ClickHouse is complete, 0 when nothing waits.',
  labelNames: ['stream'] as const,
  registers: [registry],
});
export const clickhousePending = new client.Gauge({
  name: 'tickflow_clickhouse_pending_rows',
  help: 'Rows of a stream not yet confirmed in ClickHouse.',
  labelNames: ['stream'] as const,
  registers: [registry],
});
export const jobsQueued = new client.Gauge({
  name: 'tickflow_jobs',
  help: 'Jobs in the queue by task and state (waiting, running, failed = attempts used up); backfill chunks are jobs.',
  labelNames: ['task', 'state'] as const,
  registers: [registry],
});
export const qualityFindings = new client.Gauge({
  name: 'tickflow_quality_findings',
  help: 'Quality findings (quality.findings, where present) by kind and severity.',
  labelNames: ['kind', 'severity'] as const,
  registers: [registry],
});
export const backfillChunks = new client.Gauge({
  name: 'tickflow_backfill_chunks',
  help: 'Backfill chunks (ops.backfill_chunks, where present) by venue, kind and state (queued, running, done, partial, failed).',
  labelNames: ['venue', 'kind', 'state'] as const,
  registers: [registry],
});
export const backfillRows = new client.Gauge({
  name: 'tickflow_backfill_new_rows',
  help: 'Rows that backfill chunks brought in and that were new (ops.backfill_chunks.rows_new), by venue and kind.',
  labelNames: ['venue', 'kind'] as const,
  registers: [registry],
});
export const venueRequests = new client.Counter({
  name: 'tickflow_venue_requests_total',
  help: 'REST requests counted against a venue\'s rate budget (ops.rate_state, where present).',
  labelNames: ['venue'] as const,
  registers: [registry],
});
export const venueThrottled = new client.Counter({
  name: 'tickflow_venue_throttled_total',
  help: 'Times a venue told us to slow down (ops.rate_state.throttled).',
  labelNames: ['venue'] as const,
  registers: [registry],
});
export const venueBans = new client.Counter({
  name: 'tickflow_venue_bans_total',
  help: 'Times a venue banned us for a while (ops.rate_state.bans).',
  labelNames: ['venue'] as const,
  registers: [registry],
});
export const venuePaused = new client.Gauge({
  name: 'tickflow_venue_paused',
  help: '1 while requests to the venue wait: paused after a 429, banned after a 418, or slowed down.',
  labelNames: ['venue'] as const,
  registers: [registry],
});
export const sourceErrors = new client.Counter({
  name: 'tickflow_metrics_source_errors_total',
  help: 'Scrapes for which a Postgres-backed metric source could not be read (its previous values are kept).',
  labelNames: ['source'] as const,
  registers: [registry],
});

/** What a feed exposes to the metrics (ingesters/runtime/connection.ts WsFeed fits). */
export interface FeedLike {
  readonly feed: { readonly name: string; readonly venue: string };
  readonly state: string;
  readonly messages: number;
  readonly reconnects: number;
  readonly lastFrameMono: number;
}

interface Sources {
  sql: Sql | undefined;
  feeds: FeedLike[];
  clickhouse: boolean;
  log: Logger | undefined;
}

const sources: Sources = { sql: undefined, feeds: [], clickhouse: false, log: undefined };
const lastFeedCounts = new Map<FeedLike, { messages: number; reconnects: number }>();

/**
 * Attaches the running app's database and feeds as metric sources; returns the detach function.
 * One app per process is the normal case; a later attach replaces the database source.
 */
export function attachSources(s: { sql: Sql | undefined; feeds: FeedLike[]; clickhouse: boolean; log: Logger }): () => void {
  if (s.sql) sources.sql = s.sql;
  dbCache = undefined;
  sources.feeds.push(...s.feeds);
  sources.clickhouse = s.clickhouse;
  sources.log = s.log;
  return () => {
    if (s.sql && sources.sql === s.sql) { sources.sql = undefined; dbCache = undefined; }
    sources.feeds = sources.feeds.filter((f) => !s.feeds.includes(f));
  };
}

/** Counters kept by the feeds themselves, turned into Prometheus counters at scrape time. */
function collectFeeds(): void {
  feedState.reset();
  feedUp.reset();
  feedLastMessageAge.reset();
  const now = performance.now();
  for (const f of sources.feeds) {
    const labels = { feed: f.feed.name, venue: f.feed.venue };
    feedUp.set(labels, f.state === 'connected' ? 1 : 0);
    for (const state of FEED_STATES) feedState.set({ ...labels, state }, f.state === state ? 1 : 0);
    if (f.lastFrameMono > 0) feedLastMessageAge.set(labels, (now - f.lastFrameMono) / 1000);
    const last = lastFeedCounts.get(f) ?? { messages: 0, reconnects: 0 };
    if (f.messages > last.messages) feedMessages.inc(labels, f.messages - last.messages);
    if (f.reconnects > last.reconnects) feedReconnects.inc(labels, f.reconnects - last.reconnects);
    lastFeedCounts.set(f, { messages: f.messages, reconnects: f.reconnects });
  }
}

interface DbSample {
  gaps: { venue: string; state: string; n: number }[];
  quarantine: { venue: string; n: number }[];
  pending: { n: number; lag: number } | undefined;
  clickhouse: { stream: string; lag: number; pending: number }[];
  jobs: { task: string; state: string; n: number }[];
  findings: { kind: string; severity: string; n: number }[];
  backfill: { venue: string; kind: string; state: string; n: number; rows: number }[];
  rates: { venue: string; requests: number; throttled: number; bans: number; paused: boolean }[];
}

/** True when every named column exists (tables other work adds: read them only once they are there). */
async function hasColumns(sql: Sql, schema: string, table: string, columns: string[]): Promise<boolean> {
  const [r] = await sql<{ n: number }[]>`
    select count(*)::int as n from information_schema.columns
    where table_schema = ${schema} and table_name = ${table} and column_name = any(${columns})`;
  return r?.n === columns.length;
}

const DB_CACHE_MS = 5_000;
let dbCache: { at: number; sample: Promise<void> } | undefined;

/** One query per source, each on its own so a missing table or a slow view costs only itself. */
async function readSource<T>(name: string, q: (sql: Sql) => Promise<T>): Promise<T | undefined> {
  const sql = sources.sql;
  if (!sql) return undefined;
  try {
    return (await sql.begin(async (tx) => {
      await tx`set local statement_timeout = '2s'`;
      return q(tx as unknown as Sql);
    })) as T;
  } catch (err) {
    sourceErrors.inc({ source: name });
    sources.log?.debug({ source: name, err: (err as Error).message }, 'metrics source could not be read');
    return undefined;
  }
}

async function sampleDatabase(): Promise<void> {
  const s: Partial<DbSample> = {};
  s.gaps = await readSource('gaps', (sql) => sql<DbSample['gaps']>`
    select venue, state, count(*)::int as n from quality.gaps group by venue, state`);
  s.quarantine = await readSource('quarantine', (sql) => sql<DbSample['quarantine']>`
    select venue, count(*)::int as n from staging.quarantine group by venue`);
  s.pending = (await readSource('normalization', (sql) => sql<{ n: number; lag: number }[]>`
    select count(*)::int as n, coalesce(extract(epoch from now() - min(landed_at)), 0)::float8 as lag
    from ops.batches where normalized_at is null and frames > 0`))?.[0];
  if (sources.clickhouse) {
    s.clickhouse = await readSource('clickhouse', (sql) => sql<DbSample['clickhouse']>`
      select stream, lag_seconds::float8 as lag, pending_rows::float8 as pending from ops.clickhouse_lag`);
  }
  s.jobs = await readSource('jobs', async (sql) => {
    const [ok] = await sql<{ ok: boolean }[]>`select to_regclass('graphile_worker.jobs') is not null as ok`;
    if (!ok?.ok) return [];
    return sql<DbSample['jobs']>`
      select task_identifier as task,
             case when attempts >= max_attempts then 'failed' when locked_at is not null then 'running' else 'waiting' end as state,
             count(*)::int as n
      from graphile_worker.jobs group by 1, 2`;
  });
  s.findings = await readSource('findings', async (sql) => {
    if (!(await hasColumns(sql, 'quality', 'findings', ['kind', 'severity']))) return [];
    return sql<DbSample['findings']>`select kind::text, severity::text, count(*)::int as n from quality.findings group by 1, 2`;
  });
  s.backfill = await readSource('backfill', async (sql) => {
    if (!(await hasColumns(sql, 'ops', 'backfill_chunks', ['venue', 'kind', 'state', 'rows_new']))) return [];
    return sql<DbSample['backfill']>`
      select venue, kind, state, count(*)::int as n, coalesce(sum(rows_new), 0)::float8 as rows
      from ops.backfill_chunks group by 1, 2, 3`;
  });
  s.rates = await readSource('rate_limits', async (sql) => {
    if (!(await hasColumns(sql, 'ops', 'rate_state', ['venue', 'requests', 'throttled', 'bans', 'paused_until', 'banned_until', 'slow_until']))) return [];
    return sql<DbSample['rates']>`
      select venue, requests::float8 as requests, throttled::float8 as throttled, bans::float8 as bans,
             greatest(paused_until, banned_until, slow_until) > now() as paused
      from ops.rate_state`;
  });
  if (s.backfill) {
    backfillChunks.reset(); backfillRows.reset();
    for (const r of s.backfill) {
      const venue = boundedLabel('venue', r.venue);
      const kind = boundedLabel('backfill_kind', r.kind);
      backfillChunks.set({ venue, kind, state: boundedLabel('backfill_state', r.state) }, r.n);
      backfillRows.inc({ venue, kind }, r.rows);
    }
  }
  if (s.rates) {
    // Counters kept in Postgres (they only grow): the exposition shows their current value.
    venueRequests.reset(); venueThrottled.reset(); venueBans.reset(); venuePaused.reset();
    for (const r of s.rates) {
      const venue = boundedLabel('venue', r.venue);
      venueRequests.inc({ venue }, r.requests);
      venueThrottled.inc({ venue }, r.throttled);
      venueBans.inc({ venue }, r.bans);
      venuePaused.set({ venue }, r.paused ? 1 : 0);
    }
  }
  if (s.gaps) { gaps.reset(); for (const r of s.gaps) gaps.set({ venue: boundedLabel('venue', r.venue), state: r.state }, r.n); }
  if (s.quarantine) {
    quarantined.reset();
    for (const r of s.quarantine) quarantined.set({ venue: boundedLabel('venue', r.venue) }, r.n);
  }
  if (s.pending) { normalizationPending.set(s.pending.n); normalizationLag.set(s.pending.lag); }
  if (s.clickhouse) {
    clickhouseLag.reset(); clickhousePending.reset();
    for (const r of s.clickhouse) { clickhouseLag.set({ stream: r.stream }, r.lag); clickhousePending.set({ stream: r.stream }, r.pending); }
  }
  if (s.jobs) { jobsQueued.reset(); for (const r of s.jobs) jobsQueued.set({ task: boundedLabel('task', r.task), state: r.state }, r.n); }
  if (s.findings) {
    qualityFindings.reset();
    for (const r of s.findings) qualityFindings.set({ kind: boundedLabel('finding_kind', r.kind), severity: boundedLabel('severity', r.severity) }, r.n);
  }
}

/** Brings every scrape-time metric up to date (feeds always, Postgres at most every few seconds). */
export async function collect(): Promise<void> {
  collectFeeds();
  collectLanders();
  const now = performance.now();
  if (sources.sql && (!dbCache || now - dbCache.at > DB_CACHE_MS)) {
    dbCache = { at: now, sample: sampleDatabase() };
  }
  await dbCache?.sample;
}

/** The text exposition of every metric, after collect(). */
export async function render(): Promise<string> {
  await collect();
  return registry.metrics();
}

/** What the landing writer exposes to the metrics (ingesters/runtime/lander.ts Lander fits). */
export interface LanderLike {
  readonly pending: number;
  readonly failedAttempts: number;
  onBatch(listener: (r: BatchResult) => void): void;
  onEvent(listener: (e: OpsEvent) => void): void;
}

const landers = new Map<LanderLike, number>();

/**
 * Counts what the landing writer commits (frames by venue and stream, batch sizes, receive-to-
 * commit latency of every frame when the writer keeps accept times, normalization results) and
 * the connection events it carries (connector errors, disconnect reasons).
 */
export function instrumentLander(lander: LanderLike): void {
  landers.set(lander, lander.failedAttempts);
  lander.onBatch((r) => {
    for (const s of r.streams) framesLanded.inc({ venue: boundedLabel('venue', s.venue), stream: boundedLabel('stream', s.stream) }, s.frames);
    if (r.frames > 0) landingBatchFrames.observe(r.frames);
    landingCommit.observe(r.ms / 1000);
    if (r.acceptedAt) for (const t of r.acceptedAt) landingLatency.observe((r.committedAt - t) / 1000);
    if (r.counts) {
      for (const [kind, n] of Object.entries(r.counts)) {
        const v = Number(n); // counts are row counts from ops.batches.counts, not venue fields
        if (v > 0) normalizedRows.inc({ kind: boundedLabel('count_kind', kind) }, v);
      }
    }
  });
  lander.onEvent((e) => {
    const labels = { feed: boundedLabel('feed', e.feed), venue: boundedLabel('venue', e.venue) };
    switch (e.kind) {
      case 'error_frame': case 'stale': case 'sequence_break': case 'resync': case 'circuit_open':
        connectorErrors.inc({ ...labels, kind: e.kind });
        break;
      case 'disconnected': {
        const cls = disconnectClass(String(e.detail?.reason ?? ''));
        feedDisconnects.inc({ ...labels, reason: cls });
        if (cls === 'error') connectorErrors.inc({ ...labels, kind: 'connection_error' });
        if (cls === 'venue_closed') connectorErrors.inc({ ...labels, kind: 'venue_closed' });
        break;
      }
      default:
    }
  });
}

function collectLanders(): void {
  let buffered = 0;
  for (const [l, lastFailed] of landers) {
    buffered += l.pending;
    if (l.failedAttempts > lastFailed) landingRetries.inc(l.failedAttempts - lastFailed);
    landers.set(l, l.failedAttempts);
  }
  landingBuffered.set(buffered);
}

/** The part of graphile-worker's event emitter the job metrics listen to. */
export interface JobEvents {
  on(event: 'job:start' | 'job:success' | 'job:error',
     listener: (e: { job: { id: string; task_identifier: string; attempts: number; max_attempts: number } }) => void): unknown;
}

/** Job durations by task and outcome, and failed runs (final when the job used up its attempts). */
export function instrumentJobs(events: JobEvents): void {
  const started = new Map<string, number>();
  const done = (id: string, task: string, outcome: 'success' | 'error') => {
    const t = started.get(id);
    started.delete(id);
    if (t !== undefined) jobDuration.observe({ task: boundedLabel('task', task), outcome }, (performance.now() - t) / 1000);
  };
  events.on('job:start', ({ job }) => { started.set(job.id, performance.now()); });
  events.on('job:success', ({ job }) => done(job.id, job.task_identifier, 'success'));
  events.on('job:error', ({ job }) => {
    done(job.id, job.task_identifier, 'error');
    jobFailures.inc({ task: boundedLabel('task', job.task_identifier), final: String(job.attempts >= job.max_attempts) });
  });
}

/** Stops counting a closed landing writer. */
export function forgetLander(lander: LanderLike): void { landers.delete(lander); }

/** Reason class of a disconnect, from the reason the runtime recorded (bounded). */
export function disconnectClass(reason: string): string {
  if (reason === 'shutdown' || reason === 'rotated') return reason;
  if (reason.startsWith('stale')) return 'stale';
  if (reason.startsWith('error')) return 'error';
  if (reason.startsWith('closed by venue') || reason.startsWith('closed:')) return 'venue_closed';
  return 'other';
}
