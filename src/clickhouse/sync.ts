import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type postgres from 'postgres';
import type { Config } from '../config.ts';
import type { Sql } from '../db.ts';
import type { Logger } from '../log.ts';
import { redact } from '../redact.ts';
import { clickhouseError, clickhouseOptions, openClickHouse, type ClickHouse, type ClickHouseOptions } from './client.ts';
import { migrateClickHouse } from './migrate.ts';

/**
 * Ships market rows from Postgres to ClickHouse, at least once and never twice.
 *
 * Position. Every market row carries the transaction that wrote it (sync_xid) and a sequence
 * number (sync_id). The watermark of a stream (ops.clickhouse_watermarks) is a Postgres snapshot:
 * every row visible in `shipped_snapshot` is in ClickHouse. A round takes a newer
 * `target_snapshot` and drains the rows visible in it and not in the shipped one, in
 * (sync_xid, sync_id) order and in batches, then makes it the shipped snapshot. Commit order,
 * event time and sequence order do not matter: a backfill of last year's trades, or a transaction
 * that took its sync_ids early and committed late, is simply new in the next snapshot. A long
 * transaction holds back nothing but its own rows.
 *
 * Exactly-once effect. Before inserting a batch, its upper key and a deduplication token are
 * committed as `pending`. If the process dies (or ClickHouse fails) before the batch is
 * confirmed, the next run replays the same key range, which reads the very same rows (they are
 * visible in the same two snapshots), with the same insert_deduplication_token. ClickHouse drops
 * every block of the replay that it already has, in trades and in each bar table fed by
 * materialized views (each keeps a deduplication window), and inserts the blocks it missed: a
 * replayed batch cannot double-count in the bars, which see inserted blocks rather than the
 * deduplicated table. One sync at a time holds an advisory lock, so batches never overlap.
 *
 * Bars. After each trades batch (replays included) the sync rewrites the finished bars of the
 * buckets the batch touched from the merged aggregate states (refreshBars), before confirming
 * the batch, so a crash in between is repaired by the replay.
 */

export const STREAMS = ['trades', 'quotes', 'book_snapshots'] as const;
export type StreamName = (typeof STREAMS)[number];

/** Postgres feed function and ClickHouse table of each stream (constants, never user input). */
const FEEDS: Record<StreamName, string> = {
  trades: 'ops.clickhouse_trades_feed',
  quotes: 'ops.clickhouse_quotes_feed',
  book_snapshots: 'ops.clickhouse_book_snapshots_feed',
};

/** pg_try_advisory_lock key of the sync (src/migrate.ts uses 7346221). */
export const SYNC_LOCK = 7_346_230;
const MIN_BIGINT = '-9223372036854775808';

export interface SyncRuntime {
  sql: Sql;
  ch: ClickHouse;
  options: ClickHouseOptions;
  log: Logger;
}

export interface BatchInfo {
  stream: StreamName;
  rows: number;
  token: string;
  replay: boolean;
}

/** Fault injection points for tests and benchmarks. */
export interface SyncHooks {
  /** The batch is recorded as pending and about to be inserted. */
  afterIntent?(batch: BatchInfo): void | Promise<void>;
  /** The batch is in ClickHouse and not yet confirmed in Postgres. */
  afterInsert?(batch: BatchInfo): void | Promise<void>;
}

export interface SyncOptions {
  streams?: readonly StreamName[];
  /** Rows per batch; clickhouse.sync.batchRows by default. */
  batchRows?: number;
  /** Stop a stream after this many batches even if more rows wait. */
  maxBatches?: number;
  signal?: AbortSignal;
  hooks?: SyncHooks;
}

export interface StreamReport {
  stream: StreamName;
  rows: number;
  batches: number;
  replays: number;
}

export interface SyncReport {
  /** Another sync held the lock; nothing was done. */
  skipped: boolean;
  streams: StreamReport[];
  ms: number;
}

interface Watermark {
  shipped_snapshot: string;
  target_snapshot: string | null;
  cursor_xid: string | null;
  cursor_id: string | null;
  pending_xid: string | null;
  pending_id: string | null;
  pending_token: string | null;
}


/**
 * One sync round: for each stream, finishes a drain left by an earlier run (replaying an
 * unconfirmed batch first), then drains one fresh snapshot. When it returns, every row committed
 * before it started is in ClickHouse. Returns at once (skipped) if another sync is running.
 */
export async function syncClickHouse(rt: SyncRuntime, opts: SyncOptions = {}): Promise<SyncReport> {
  const started = performance.now();
  const db = await rt.sql.reserve();
  try {
    const [lock] = await db<{ locked: boolean }[]>`select pg_try_advisory_lock(${SYNC_LOCK}) as locked`;
    if (!lock?.locked) return { skipped: true, streams: [], ms: performance.now() - started };
    try {
      const streams: StreamReport[] = [];
      for (const stream of opts.streams ?? STREAMS) {
        streams.push(await syncStream(db, rt, stream, opts));
      }
      return { skipped: false, streams, ms: performance.now() - started };
    } finally {
      await db`select pg_advisory_unlock(${SYNC_LOCK})`;
    }
  } finally {
    db.release();
  }
}

async function syncStream(db: postgres.ReservedSql, rt: SyncRuntime, stream: StreamName, opts: SyncOptions): Promise<StreamReport> {
  const report: StreamReport = { stream, rows: 0, batches: 0, replays: 0 };
  const batchRows = opts.batchRows ?? rt.options.sync.batchRows;
  const maxBatches = opts.maxBatches ?? Number.POSITIVE_INFINITY;
  let drainStartedHere = false;
  try {
    while (report.batches + report.replays < maxBatches) {
      opts.signal?.throwIfAborted();
      const [w] = await db<Watermark[]>`
        select shipped_snapshot::text, target_snapshot::text, cursor_xid::text, cursor_id::text,
               pending_xid::text, pending_id::text, pending_token
        from ops.clickhouse_watermarks where stream = ${stream}`;
      if (!w) throw clickhouseError('CLICKHOUSE_SYNC', `ops.clickhouse_watermarks: expected a row for stream ${stream}, received none`);

      if (w.pending_xid !== null && w.pending_token !== null) {
        // An earlier run may or may not have inserted this batch: send it again, identically.
        const fed = await feed(db, stream, w, w.pending_xid, w.pending_id, null);
        const batch: BatchInfo = { stream, rows: fed.rows, token: w.pending_token, replay: true };
        await insert(rt.ch, stream, fed, w.pending_token);
        if (stream === 'trades') await refreshBars(rt.ch, fed.minutes);
        await opts.hooks?.afterInsert?.(batch);
        await db`
          update ops.clickhouse_watermarks
          set cursor_xid = pending_xid, cursor_id = pending_id, pending_xid = null, pending_id = null, pending_token = null,
              replays = replays + 1, rows_shipped = rows_shipped + ${fed.rows}, last_batch_at = now(),
              last_error = null, last_error_at = null, updated_at = now()
          where stream = ${stream}`;
        report.replays += 1;
        report.rows += fed.rows;
        rt.log.info({ stream, rows: fed.rows, token: w.pending_token }, 'clickhouse sync: unconfirmed batch replayed');
        continue;
      }

      if (w.target_snapshot === null) {
        await db`
          update ops.clickhouse_watermarks
          set target_snapshot = pg_current_snapshot(), target_snapshot_at = now(),
              cursor_xid = pg_snapshot_xmin(shipped_snapshot), cursor_id = ${MIN_BIGINT}::bigint, updated_at = now()
          where stream = ${stream}`;
        drainStartedHere = true;
        continue;
      }

      const fed = await feed(db, stream, w, null, null, batchRows);
      if (fed.rows === 0) {
        await db`
          update ops.clickhouse_watermarks
          set shipped_snapshot = target_snapshot, shipped_snapshot_at = target_snapshot_at,
              target_snapshot = null, target_snapshot_at = null, cursor_xid = null, cursor_id = null,
              last_error = null, last_error_at = null, updated_at = now()
          where stream = ${stream}`;
        if (drainStartedHere) break;
        continue;
      }

      if (fed.inexact !== undefined) {
        throw clickhouseError('CLICKHOUSE_SYNC',
          `${stream}: expected numbers with at most 12 decimals (ClickHouse Decimal(38, 12)), received the row ${JSON.stringify(fed.inexact)}; ` +
          'round it in the normalizer or widen the ClickHouse columns in a new migration');
      }
      const token = batchToken(stream, w, fed.lastXid, fed.lastId);
      const batch: BatchInfo = { stream, rows: fed.rows, token, replay: false };
      await db`
        update ops.clickhouse_watermarks
        set pending_xid = ${fed.lastXid}::xid8, pending_id = ${fed.lastId}::bigint, pending_token = ${token}, updated_at = now()
        where stream = ${stream}`;
      await opts.hooks?.afterIntent?.(batch);
      await insert(rt.ch, stream, fed, token);
      if (stream === 'trades') await refreshBars(rt.ch, fed.minutes);
      await opts.hooks?.afterInsert?.(batch);
      await db`
        update ops.clickhouse_watermarks
        set cursor_xid = pending_xid, cursor_id = pending_id, pending_xid = null, pending_id = null, pending_token = null,
            batches = batches + 1, rows_shipped = rows_shipped + ${fed.rows}, last_batch_at = now(),
            last_error = null, last_error_at = null, updated_at = now()
        where stream = ${stream}`;
      report.batches += 1;
      report.rows += fed.rows;
    }
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    const message = redact(err instanceof Error ? err.message : String(err)).slice(0, 2000);
    await db`update ops.clickhouse_watermarks set last_error = ${message}, last_error_at = now() where stream = ${stream}`
      .catch((recordErr: unknown) => rt.log.warn({ err: recordErr, stream }, 'clickhouse sync: could not record the error'));
    throw err;
  }
  return report;
}

/**
 * Each feed's rows as ClickHouse TabSeparated lines, built by Postgres (ops.clickhouse_tsv
 * escapes text as TabSeparated does and writes NULL as \N), with the ClickHouse columns they
 * fill, in order.
 */
const TSV: Record<StreamName, { line: string; columns: string[] }> = {
  trades: {
    line: `concat_ws(E'\\t', ops.clickhouse_tsv(venue), ops.clickhouse_tsv(symbol), instrument_id, traded_at, ops.clickhouse_tsv(trade_id),
           coalesce(seq::text, '\\N'), price, size, ops.clickhouse_tsv(side), received_at, ops.clickhouse_tsv(source))`,
    columns: ['venue', 'symbol', 'instrument_id', 'traded_at', 'trade_id', 'seq', 'price', 'size', 'side', 'received_at', 'source'],
  },
  quotes: {
    line: `concat_ws(E'\\t', ops.clickhouse_tsv(venue), ops.clickhouse_tsv(symbol), instrument_id, quoted_at, seq,
           coalesce(bid::text, '\\N'), coalesce(bid_size::text, '\\N'), coalesce(ask::text, '\\N'), coalesce(ask_size::text, '\\N'),
           tradeable::int, ops.clickhouse_tsv(time_source), received_at, ops.clickhouse_tsv(source))`,
    columns: ['venue', 'symbol', 'instrument_id', 'quoted_at', 'seq', 'bid', 'bid_size', 'ask', 'ask_size', 'tradeable', 'time_source', 'received_at', 'source'],
  },
  book_snapshots: {
    line: `concat_ws(E'\\t', ops.clickhouse_tsv(venue), ops.clickhouse_tsv(symbol), instrument_id, taken_at, update_id, ops.clickhouse_tsv(origin),
           '[' || array_to_string(bid_prices, ',') || ']', '[' || array_to_string(bid_sizes, ',') || ']',
           '[' || array_to_string(ask_prices, ',') || ']', '[' || array_to_string(ask_sizes, ',') || ']', received_at)`,
    columns: ['venue', 'symbol', 'instrument_id', 'taken_at', 'update_id', 'origin', 'bid_prices', 'bid_sizes', 'ask_prices', 'ask_sizes', 'received_at'],
  },
};

interface Fed {
  rows: number;
  /** Sync key of the last row. */
  lastXid: string;
  lastId: string;
  /** TabSeparated body for ClickHouse, one line per row. */
  body: string;
  /** The first row that does not fit Decimal(38, 12) exactly. */
  inexact: Record<string, unknown> | undefined;
  /** Trades: the minutes (epoch seconds) each instrument's rows fall in. */
  minutes: Map<number, Set<number>>;
}

/**
 * The rows after the cursor (up to a key, or a number of rows) of the current drain, as one
 * TabSeparated text formatted by Postgres: rows reach ClickHouse without becoming JavaScript
 * values. Returns the last key, whether every number is exact, and (trades) the minutes touched.
 */
async function feed(db: postgres.ReservedSql, stream: StreamName, w: Watermark,
                    uptoXid: string | null, uptoId: string | null, limit: number | null): Promise<Fed> {
  const args = [w.shipped_snapshot, w.target_snapshot, w.cursor_xid, w.cursor_id, uptoXid, uptoId, limit];
  const call = `${FEEDS[stream]}($1::pg_snapshot, $2::pg_snapshot, $3::xid8, $4::bigint, $5::xid8, $6::bigint, $7::integer)`;
  const minutes = stream === 'trades'
    ? `(select string_agg(distinct instrument_id::text || ' ' || left(traded_at, 16), E'\\n') from f)`
    : 'null::text';
  const [row] = await db.unsafe(`
    with f as materialized (select * from ${call})
    select (select count(*) from f)::int as rows,
           (select sync_xid::text || ' ' || sync_id::text from f order by sync_xid desc, sync_id desc limit 1) as last_key,
           coalesce((select bool_and(exact) from f), true) as exact,
           (select string_agg(${TSV[stream].line}, E'\\n' order by sync_xid, sync_id) from f) as body,
           ${minutes} as minutes`, args as postgres.ParameterOrJSON<never>[]) as unknown as
    [{ rows: number; last_key: string | null; exact: boolean; body: string | null; minutes: string | null }];
  if (!row || row.rows === 0) return { rows: 0, lastXid: '', lastId: '', body: '', inexact: undefined, minutes: new Map() };
  const [lastXid = '', lastId = ''] = (row.last_key ?? '').split(' ');
  let inexact: Record<string, unknown> | undefined;
  if (!row.exact) {
    const [bad] = await db.unsafe(`select * from ${call} where not exact limit 1`, args as postgres.ParameterOrJSON<never>[]);
    const { sync_xid: _x, sync_id: _i, exact: _e, ...values } = (bad ?? {}) as Record<string, unknown>;
    inexact = values;
  }
  const touched = new Map<number, Set<number>>();
  for (const entry of row.minutes?.split('\n') ?? []) {
    const [id, day, time] = entry.split(' ');
    let set = touched.get(Number(id));
    if (!set) { set = new Set(); touched.set(Number(id), set); }
    set.add(Date.parse(`${day}T${time}:00Z`) / 1000);
  }
  return { rows: row.rows, lastXid, lastId, body: `${row.body ?? ''}\n`, inexact, minutes: touched };
}

/** Same stream, snapshots and key range, same token: a replay is recognised by ClickHouse. */
function batchToken(stream: StreamName, w: Watermark, lastXid: string, lastId: string): string {
  const range = [w.shipped_snapshot, w.target_snapshot, w.cursor_xid, w.cursor_id, lastXid, lastId].join('|');
  return `tickflow:${stream}:${createHash('sha256').update(range).digest('hex').slice(0, 40)}`;
}

async function insert(ch: ClickHouse, stream: StreamName, fed: Fed, token: string): Promise<void> {
  if (fed.rows === 0) return;
  try {
    await ch.client.insert({
      table: stream,
      values: Readable.from([Buffer.from(fed.body)], { objectMode: false }),
      format: 'TabSeparated',
      columns: TSV[stream].columns as [string, ...string[]],
      clickhouse_settings: {
        insert_deduplication_token: token,
        insert_deduplicate: 1,
        deduplicate_blocks_in_dependent_materialized_views: 1,
        // One block per partition, so a replay is cut into the same blocks as the original.
        max_insert_block_size: '2000000',
        min_insert_block_size_rows: '0',
        min_insert_block_size_bytes: '0',
      },
    });
  } catch (err) {
    throw clickhouseError('CLICKHOUSE_SYNC', `${stream}: insert of ${fed.rows} rows into ClickHouse failed: ${(err as Error).message}`, { cause: err });
  }
}

/** Bar timeframes and their width in seconds (each divides a day, so UTC-day alignment holds). */
export const TIMEFRAMES = [['1m', 60], ['5m', 300], ['15m', 900], ['1h', 3600], ['4h', 14_400], ['1d', 86_400]] as const;

/** Ranges of buckets closer than this many bucket widths are refreshed as one range. */
const RANGE_GAP = 32;
/** Ranges per refresh statement (keeps each statement far below max_query_size). */
const RANGES_PER_STATEMENT = 400;

/**
 * Rewrites the finished bars (bars_<tf>_data) of every timeframe for the buckets holding the
 * given minutes, from the merged aggregate states. Idempotent: the newest refresh of a bucket
 * wins (ReplacingMergeTree on refreshed_at), so running it again, or for more buckets than
 * needed, changes nothing but the version. The sync calls it after each trades batch, replays
 * included; call it (or refreshBarsRange) after writing trades into ClickHouse any other way.
 */
export async function refreshBars(ch: ClickHouse, minutes: Map<number, Set<number>>): Promise<void> {
  for (const [tf, width] of TIMEFRAMES) {
    const ranges: string[] = [];
    for (const [id, set] of minutes) {
      const buckets = [...new Set([...set].map((m) => m - (m % width)))].sort((a, b) => a - b);
      let from = buckets[0]!;
      let to = from + width;
      for (const b of buckets.slice(1)) {
        if (b - to <= RANGE_GAP * width) { to = b + width; continue; }
        ranges.push(bucketRange(id, from, to));
        from = b;
        to = b + width;
      }
      if (buckets.length > 0) ranges.push(bucketRange(id, from, to));
    }
    for (let i = 0; i < ranges.length; i += RANGES_PER_STATEMENT) {
      await refreshStatement(ch, tf, ranges.slice(i, i + RANGES_PER_STATEMENT).join(' OR '));
    }
  }
}

/** Rewrites the finished bars of the buckets overlapping [from, to), for some or all instruments. */
export async function refreshBarsRange(ch: ClickHouse, from: Date, to: Date, instrumentIds?: readonly number[]): Promise<void> {
  const a = Math.floor(from.getTime() / 1000);
  const b = Math.ceil(to.getTime() / 1000);
  for (const [tf, width] of TIMEFRAMES) {
    const start = a - (a % width);
    const where = instrumentIds === undefined
      ? `s.bucket >= toDateTime(${start}, 'UTC') AND s.bucket < toDateTime(${b}, 'UTC')`
      : instrumentIds.map((id) => bucketRange(id, start, b)).join(' OR ');
    if (where.length > 0) await refreshStatement(ch, tf, where);
  }
}

function bucketRange(id: number, from: number, to: number): string {
  // Integers produced here (an instrument id from Postgres, epoch seconds), never text.
  if (!Number.isSafeInteger(id) || !Number.isSafeInteger(from) || !Number.isSafeInteger(to)) {
    throw clickhouseError('CLICKHOUSE_SYNC', `bar refresh: expected integer ids and times, received ${id}, ${from}, ${to}`);
  }
  return `(s.instrument_id = ${id} AND s.bucket >= toDateTime(${from}, 'UTC') AND s.bucket < toDateTime(${to}, 'UTC'))`;
}

/** vwap = notional / volume truncated to 18 decimals: Int128 while notional * 10^6 fits, else Decimal256. */
const VWAP = `if(s.notional < 170000000,
    reinterpret(intDiv(reinterpretAsInt128(s.notional) * 1000000, reinterpretAsInt128(s.volume)), 'Decimal(38, 18)'),
    toDecimal128(s.notional / s.volume, 18))`;

async function refreshStatement(ch: ClickHouse, tf: string, where: string): Promise<void> {
  try {
    await ch.client.command({
      query: `INSERT INTO bars_${tf}_data (venue, symbol, bucket, instrument_id, open, high, low, close, volume, vwap, trades, notional, refreshed_at)
              SELECT s.venue, s.symbol, s.bucket, s.instrument_id, finalizeAggregation(s.open), s.high, s.low,
                     finalizeAggregation(s.close), s.volume, ${VWAP}, s.trades, s.notional, now64(6)
              FROM bars_${tf}_state AS s FINAL
              WHERE ${where}`,
    });
  } catch (err) {
    throw clickhouseError('CLICKHOUSE_SYNC', `refresh of bars_${tf}: ${(err as Error).message}`, { cause: err });
  }
}

let registered: SyncRuntime | undefined;

/** `tickflow start` registers the process's Postgres and ClickHouse here for the clickhouse_sync job. */
export function registerSyncRuntime(rt: SyncRuntime | undefined): void {
  registered = rt;
}

export function registeredSyncRuntime(): SyncRuntime | undefined {
  return registered;
}

export interface SyncLoop {
  /** Resolves when the loop has stopped (after the round in progress). */
  stop(): Promise<void>;
}

/**
 * Runs a sync round, waits intervalMs, and again, until stopped. This is how `tickflow start`
 * keeps ClickHouse within about a second of Postgres (graphile-worker's cron is per minute); a
 * failed round is logged and retried after a capped backoff, replaying its batch.
 */
export function startSyncLoop(rt: SyncRuntime, opts: { intervalMs?: number; hooks?: SyncHooks } = {}): SyncLoop {
  const interval = opts.intervalMs ?? rt.options.sync.intervalMs;
  const abort = new AbortController();
  let failures = 0;
  const loop = (async () => {
    while (!abort.signal.aborted) {
      try {
        const report = await syncClickHouse(rt, { signal: abort.signal, hooks: opts.hooks });
        failures = 0;
        const rows = report.streams.reduce((n, s) => n + s.rows, 0);
        if (rows > 0) rt.log.debug({ rows, ms: Math.round(report.ms) }, 'clickhouse sync round');
      } catch (err) {
        if (abort.signal.aborted) break;
        failures += 1;
        rt.log.error({ err, failures }, 'clickhouse sync round failed');
      }
      const wait = failures === 0 ? interval : Math.min(30_000, interval * 2 ** Math.min(failures, 8));
      await new Promise<void>((resolve) => {
        const done = () => { clearTimeout(timer); abort.signal.removeEventListener('abort', done); resolve(); };
        const timer = setTimeout(done, wait);
        abort.signal.addEventListener('abort', done, { once: true });
      });
    }
  })();
  return {
    stop: async () => {
      abort.abort();
      await loop;
    },
  };
}

export interface ClickHouseService {
  runtime: SyncRuntime;
  /** Stops the sync loop, unregisters the runtime and closes ClickHouse. */
  stop(): Promise<void>;
}

/**
 * What `tickflow start` runs for ClickHouse, after the Postgres migrations: opens ClickHouse
 * (embedded: takes the folder, or fails with DATA_DIR_LOCKED), applies its migrations, registers
 * the runtime for the clickhouse_sync job and starts the sync loop. Undefined when
 * clickhouse.enabled is false.
 */
export async function startClickHouseService(config: Config, sql: Sql, log: Logger): Promise<ClickHouseService | undefined> {
  const options = clickhouseOptions(config);
  if (!options.enabled) return undefined;
  const ch = await openClickHouse(config, options);
  try {
    await migrateClickHouse(ch, options, log);
  } catch (err) {
    await ch.close();
    throw err;
  }
  const runtime: SyncRuntime = { sql, ch, options, log: log.child({ component: 'clickhouse-sync' }) };
  registerSyncRuntime(runtime);
  const loop = startSyncLoop(runtime);
  log.info({ mode: ch.mode, location: ch.location, intervalMs: options.sync.intervalMs }, 'clickhouse sync started');
  return {
    runtime,
    stop: async () => {
      await loop.stop();
      if (registeredSyncRuntime() === runtime) registerSyncRuntime(undefined);
      await ch.close();
    },
  };
}
