import type { Config } from '../../src/config.ts';
import type { Sql } from '../../src/db.ts';
import type { Logger } from '../../src/log.ts';
import { TickflowError } from '../../src/errors.ts';
import type { Lander } from './lander.ts';
import { RestRefused, type RestAnswer, type RestPage, type RestVenue } from './rest.ts';

/**
 * A venue's history API as one declarative file describes it (ingesters/<venue>-rest.ts): how to
 * page candles by time and id-sequenced streams by id, and how to find the first id at a time.
 * The runner below knows no venue by name, and never reads a price, size or venue time: the
 * pages land raw and SQL reads them; cursors come from our own plan times and from SQL.
 */
export interface HistoryVenue extends RestVenue {
  /** BTC/USDT -> the venue's symbol in requests. */
  venueSymbol(symbol: string): string;
  timeframes: readonly string[];
  widthMs(timeframe: string): number | undefined;
  /** Rows per page (candles and id-sequenced endpoints alike). */
  pageSize: number;
  /** The page of candles with open times in [fromMs, toMs) (at most pageSize of them). */
  candlePage(symbol: string, timeframe: string, fromMs: number, toMs: number): RestPage;
  /** Id-sequenced streams (live stream name -> page of `limit` ids starting at fromId). */
  idStreams: Readonly<Record<string, (symbol: string, fromId: string, limit: number) => RestPage>>;
  /** A page whose first row is the first trade at or after atMs (bounds an id range by time). */
  idAt(symbol: string, atMs: number): RestPage;
  /**
   * Venues that page one request's answer (a cursor such as Polygon's next_url): the page that
   * continues `page`, read from the venue's cursor field of its body (never from prices or
   * times), or undefined when the answer is complete. The engine fetches it within the same
   * window, so a window counts as landed only with all its pages.
   */
  nextPage?(page: RestPage, body: string): RestPage | undefined;
  /**
   * Venues that serve history as files (an hour of ticks, a day of candles): the files of a
   * chunk's [fromMs, toMs) for its kind and timeframe, in time order. When present, backfill
   * chunks fetch these instead of paging, skipping the files SQL has recorded whole
   * (ops.missing_files); the venue's normalizer counts `rows_received` and `rows_new`.
   */
  filePages?(symbol: string, kind: string, timeframe: string | null, fromMs: number, toMs: number): RestPage[];
  /**
   * Venues whose history is not served over HTTP (a socket API): the fetcher the runner uses
   * instead of the REST client. It takes its own budget and returns answers like the client's.
   */
  openFetcher?(env: FetcherEnv): PageFetcher;
}

/** What fetches a history page: the REST client, or a venue's own fetcher. */
export interface PageFetcher {
  get(page: RestPage, signal: AbortSignal, onBad: (answer: RestAnswer, why: string) => void): Promise<RestAnswer>;
  readonly requests: number;
  /** Called when the job ends (a fetcher holding a connection closes it). */
  close?(): Promise<void>;
}

/** What a venue's own fetcher gets from the job that opens it. */
export interface FetcherEnv {
  sql: Sql;
  config: Config;
  log: Logger;
  /** A budget wait longer than this defers the job (RestDeferred) instead of sleeping in it. */
  maxInlineWaitMs: number;
}

export type Counts = Record<string, number>;

export interface HistoryContext {
  sql: Sql;
  lander: Lander;
  client: PageFetcher;
  venue: HistoryVenue;
  signal: AbortSignal;
  log: Logger;
  /** Requests in flight at once for one job. */
  concurrency: number;
  /** Pages landed (and normalized) per transaction. */
  pagesPerBatch: number;
}

export function addCounts(into: Counts, more: Counts | null | undefined): Counts {
  for (const [k, v] of Object.entries(more ?? {})) into[k] = (into[k] ?? 0) + Number(v);
  return into;
}

/**
 * Lands REST answers through the landing writer (one batch per call, normalized in its
 * transaction) and returns what normalization counted. One per job: the writer is the job's own.
 */
export class PageLanding {
  private counts: Counts = {};
  private failed: string | undefined;
  private seq = 0;

  constructor(private readonly lander: Lander, private readonly venue: string) {
    lander.onBatch((r) => {
      if (r.frames === 0) return;
      if (r.counts) addCounts(this.counts, r.counts);
      else this.failed = `batch ${r.batchId} was landed but not normalized (normalize_pending retries it)`;
    });
  }

  async land(answers: RestAnswer[]): Promise<Counts> {
    this.counts = {};
    this.failed = undefined;
    if (answers.length === 0) return this.counts;
    for (const a of answers) {
      this.lander.offer({ venue: this.venue, stream: a.page.stream, sessionId: null, seq: ++this.seq,
        receivedAt: a.receivedAt, source: a.page.source ?? 'rest', request: a.request, payload: a.body,
        ...(a.columns ? { columns: a.columns } : {}) });
    }
    await this.lander.flush();
    if (this.failed) throw new TickflowError('VENUE_REST', `REST pages landed but normalization failed: ${this.failed}`);
    return this.counts;
  }
}

/** Fetches pages with a few requests in flight; answers that are not usable pages come back as bad. */
export async function fetchPages(ctx: HistoryContext, pages: RestPage[]): Promise<{ good: RestAnswer[]; bad: RestAnswer[] }> {
  const good: RestAnswer[] = new Array(pages.length);
  const followed: RestAnswer[] = [];
  const bad: RestAnswer[] = [];
  let next = 0;
  const worker = async () => {
    while (next < pages.length) {
      const k = next++;
      let answer = await ctx.client.get(pages[k]!, ctx.signal, (a) => { bad.push(a); });
      good[k] = answer;
      // The rest of a paged answer, in order, by the venue's cursor.
      for (let more = ctx.venue.nextPage?.(answer.page, answer.body), n = 1; more; more = ctx.venue.nextPage?.(answer.page, answer.body), n++) {
        if (n > MAX_FOLLOWED_PAGES) {
          throw new TickflowError('VENUE_REST', `${ctx.venue.venue}: more than ${MAX_FOLLOWED_PAGES} next pages after ${answer.request}`);
        }
        answer = await ctx.client.get(more, ctx.signal, (a) => { bad.push(a); });
        followed.push(answer);
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(ctx.concurrency, pages.length) }, worker));
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) {
    // What was fetched before the failure is still landed: the venue's error bodies above all.
    const partial = good.filter(Boolean);
    (failure.reason as { landed?: RestAnswer[] }).landed = [...partial, ...followed, ...bad];
    throw failure.reason;
  }
  return { good: [...good, ...followed], bad };
}

/** A cursor that never ends (a venue bug) stops here instead of paging forever. */
const MAX_FOLLOWED_PAGES = 10_000;

/** Fetches and lands pages in batches; progress is called after each landed batch. */
/** A landed batch: pages, their weight, what SQL counted, and the index of its last page (-1: a partial batch). */
export interface BatchProgress { pages: number; weight: number; counts: Counts; last: number }

export async function fetchAndLand(ctx: HistoryContext, landing: PageLanding, pages: RestPage[],
                                   progress: (batch: BatchProgress) => Promise<void>): Promise<Counts> {
  const total: Counts = {};
  // The next batch is fetched (and decoded) while this one lands: the venue and Postgres work at once.
  const ahead = new AbortController();
  const stop = () => ahead.abort(ctx.signal.reason);
  ctx.signal.addEventListener('abort', stop, { once: true });
  const fetchBatch = (k: number) => {
    const p = fetchPages({ ...ctx, signal: ahead.signal }, pages.slice(k, k + ctx.pagesPerBatch));
    p.catch(() => {}); // settled below, in order
    return p;
  };
  let next = pages.length > 0 ? fetchBatch(0) : undefined;
  try {
    for (let k = 0; k < pages.length; k += ctx.pagesPerBatch) {
      const batch = pages.slice(k, k + ctx.pagesPerBatch);
      let fetched: { good: RestAnswer[]; bad: RestAnswer[] };
      try {
        fetched = await next!;
      } catch (err) {
        next = undefined;
        // What was fetched is landed and counted (its rows are new now, not on the retry); the
        // batch's end is not reached, so the resume point stays where it was.
        const landed = (err as { landed?: RestAnswer[] }).landed;
        if (landed?.length) {
          try {
            const counts = await landing.land(landed);
            await progress({ pages: landed.length, weight: landed.reduce((w, a) => w + a.page.weight, 0), counts, last: -1 });
          } catch (e) {
            ctx.log.warn({ err: (e as Error).message }, 'could not land the pages of a failed batch');
          }
        }
        throw err;
      }
      next = k + ctx.pagesPerBatch < pages.length ? fetchBatch(k + ctx.pagesPerBatch) : undefined;
      const counts = await landing.land([...fetched.good, ...fetched.bad]);
      // Every answer the venue gave as a good page must be readable: one SQL refused (quarantined
      // whole, with the reason) fails the batch, to be fetched again.
      if ((counts.pages_quarantined ?? 0) > fetched.bad.length) {
        throw new TickflowError('VENUE_REST', `${(counts.pages_quarantined ?? 0) - fetched.bad.length} of ${batch.length} pages ` +
          'the venue answered could not be read (see staging.quarantine)');
      }
      addCounts(total, counts);
      await progress({ pages: fetched.good.length, weight: [...fetched.good, ...fetched.bad].reduce((w, a) => w + a.page.weight, 0),
        counts, last: k + batch.length - 1 });
    }
  } finally {
    // A batch fetched ahead of a failure is stopped and dropped (fetched again on the retry).
    if (next) {
      ahead.abort(new Error('the batch before it failed'));
      await next.catch(() => {});
    }
    ctx.signal.removeEventListener('abort', stop);
  }
  return total;
}

/**
 * Fetches every id of [fromId, toId] of an id-sequenced stream that is not stored yet, asking SQL
 * which ids are missing (market.missing_id_pages) after each landed batch, until none is or a
 * round brings nothing new (the venue does not have them). Returns the rows brought back.
 */
export async function fetchMissingIds(ctx: HistoryContext, landing: PageLanding, stream: string, symbol: string,
                                      instrumentId: number, fromId: string, toId: string,
                                      progress?: (batch: { pages: number; weight: number; counts: Counts }) => Promise<void>): Promise<{ rows: number; missing: number }> {
  const pageOf = ctx.venue.idStreams[stream];
  if (!pageOf) throw new TickflowError('VENUE_REST', `${ctx.venue.venue} has no REST history of stream ${stream}`);
  const newKey = stream === 'trade' ? 'trades' : 'agg_trades';
  let rows = 0;
  let lastMissing = Number.POSITIVE_INFINITY;
  for (let round = 0; ; round++) {
    ctx.signal.throwIfAborted();
    const [m] = await ctx.sql<{ missing: string }[]>`
      select market.missing_id_count(${stream}, ${instrumentId}, ${fromId}::bigint, ${toId}::bigint)::text as missing`;
    const missing = Number(m?.missing ?? 0);
    if (missing === 0 || missing >= lastMissing) return { rows, missing };
    lastMissing = missing;
    const wanted = await ctx.sql<{ from_id: string; n: number }[]>`
      select from_id::text, (to_id - from_id + 1)::int as n
      from market.missing_id_pages(${stream}, ${instrumentId}, ${fromId}::bigint, ${toId}::bigint, ${ctx.venue.pageSize})
      limit ${ctx.pagesPerBatch * 4}`;
    const pages = wanted.map((w) => pageOf(ctx.venue.venueSymbol(symbol), w.from_id, w.n));
    const counts = await fetchAndLand(ctx, landing, pages, async (b) => { await progress?.(b); });
    rows += counts[newKey] ?? 0;
  }
}

/** What the bars refresh needs of a connection: postgres.js (sql.unsafe) and PGlite (query().rows) both fit. */
export interface BarsDb {
  rows<T>(text: string, params: unknown[]): Promise<T[]>;
}

export const barsDb = (sql: Sql): BarsDb => ({
  rows: async <T>(text: string, params: unknown[]) => (await sql.unsafe(text, params as never[])) as unknown as T[],
});

/**
 * Makes the bars of a window exact after history arrived (both engines; see
 * market.refresh_bars_window): the rollup rebuilds them at once; on TimescaleDB the windows of
 * every continuous aggregate are queued and each is refreshed here with its own CALL, outside
 * any transaction (a refresh policy never reaches history this old).
 */
export async function refreshBarsWindow(db: BarsDb, instrumentId: number | null, from: string, to: string,
                                        signal?: AbortSignal): Promise<number> {
  await db.rows('select market.refresh_bars_window($1::integer, $2::timestamptz, $3::timestamptz)', [instrumentId, from, to]);
  const windows = await db.rows<{ window_id: string; cagg: string; window_start: string; window_end: string }>(
    'select window_id::text, cagg::text, window_start::text, window_end::text from market.pending_bar_refreshes()', []);
  for (const w of windows) {
    signal?.throwIfAborted();
    await db.rows('call refresh_continuous_aggregate($1::regclass, $2::timestamptz, $3::timestamptz)', [w.cagg, w.window_start, w.window_end]);
    await db.rows('select market.finish_bar_refresh($1::bigint)', [w.window_id]);
  }
  return windows.length;
}

/** A backfill chunk as ops.backfill_chunk_start() returns it (times also as epoch ms text). */
export interface ChunkRow {
  chunk_id: string;
  venue: string;
  symbol: string;
  kind: 'candles' | 'trades' | 'ticks';
  timeframe: string | null;
  from_ms: string;
  to_ms: string;
  fetched_to_ms: string | null;
}

const iso = (ms: number) => new Date(ms).toISOString();


/**
 * One backfill chunk: candles by time windows of one page each, or trades by id between the
 * first trade at the chunk's start and the first at its end. Progress is recorded after every
 * landed batch, so a restart resumes at the last landed batch. Returns the chunk's state.
 */
export async function backfillChunk(ctx: HistoryContext, landing: PageLanding, chunk: ChunkRow): Promise<string> {
  const fromMs = Number(chunk.from_ms);
  const toMs = Number(chunk.to_ms);
  const symbol = ctx.venue.venueSymbol(chunk.symbol);
  const now = Date.now();
  let fetchedTo: number;
  if (ctx.venue.filePages) {
    // Files: each is whole or missing, so a restart fetches exactly the files not recorded yet.
    fetchedTo = Math.min(toMs, now);
    const all = ctx.venue.filePages(symbol, chunk.kind, chunk.timeframe, fromMs, fetchedTo);
    const missing = new Set((await ctx.sql<{ path: string }[]>`
      select path from ops.missing_files(${ctx.venue.venue}, ${all.map((p) => p.path)}::text[]) path`).map((r) => r.path));
    await fetchAndLand(ctx, landing, all.filter((p) => missing.has(p.path)), async (b) => {
      await ctx.sql`select ops.backfill_chunk_progress(${chunk.chunk_id}, ${b.pages}, ${b.weight}, ${b.counts.rows_received ?? 0},
                                                       ${b.counts.rows_new ?? 0}, null)`;
    });
  } else if (chunk.kind === 'ticks') {
    throw new RestRefused(`${ctx.venue.venue} has no tick history (only venues that serve files do)`);
  } else if (chunk.kind === 'candles') {
    const width = chunk.timeframe ? ctx.venue.widthMs(chunk.timeframe) : undefined;
    if (!width) throw new RestRefused(`${ctx.venue.venue} has no ${chunk.timeframe} candles (it has ${ctx.venue.timeframes.join(', ')})`);
    // Resume one bucket before what was landed (it may have been incomplete), never before the chunk.
    const resume = chunk.fetched_to_ms === null ? fromMs : Math.max(fromMs, Math.floor(Number(chunk.fetched_to_ms) / width) * width - width);
    const end = Math.min(toMs, Math.floor(now / width) * width + width); // the current bucket, incomplete, is included
    const span = width * ctx.venue.pageSize;
    const windows: Array<[number, number]> = [];
    for (let s = resume; s < end; s += span) windows.push([s, Math.min(s + span, end)]);
    await fetchAndLand(ctx, landing, windows.map(([s, e]) => ctx.venue.candlePage(symbol, chunk.timeframe!, s, e)), async (b) => {
      const landedTo = b.last < 0 ? null : iso(Math.min(windows[b.last]![1], Math.floor(now / width) * width));
      await ctx.sql`select ops.backfill_chunk_progress(${chunk.chunk_id}, ${b.pages}, ${b.weight}, ${b.counts.rows_received ?? b.counts.klines ?? 0},
                                                       ${b.counts.candles ?? 0}, ${landedTo}::timestamptz)`;
    });
    fetchedTo = Math.min(toMs, Math.floor(now / width) * width);
  } else {
    // Trades: ids are bounded by the first aggregate trade at each end (landed, then read by SQL).
    fetchedTo = Math.min(toMs, now - 60_000);
    const lookups = [ctx.venue.idAt(symbol, fromMs), ctx.venue.idAt(symbol, fetchedTo)];
    const ends = await fetchPages(ctx, lookups);
    await landing.land([...ends.good, ...ends.bad]);
    await ctx.sql`select ops.backfill_chunk_progress(${chunk.chunk_id}, ${lookups.length},
                    ${lookups.reduce((w, p) => w + p.weight, 0)}, 0, 0, null)`;
    const [b] = await ctx.sql<{ instrument_id: number | null; from_id: string | null; to_id: string | null }[]>`
      select instrument_id, from_id::text, to_id::text
      from ops.backfill_id_bounds(${chunk.venue}, ${chunk.symbol}, ${iso(fromMs)}::timestamptz, ${iso(fetchedTo)}::timestamptz)`;
    if (b?.instrument_id != null && b.from_id !== null && b.to_id !== null) {
      await fetchMissingIds(ctx, landing, 'trade', chunk.symbol, b.instrument_id, b.from_id, b.to_id, async (p) => {
        await ctx.sql`select ops.backfill_chunk_progress(${chunk.chunk_id}, ${p.pages}, ${p.weight},
                        ${(p.counts.trades ?? 0) + (p.counts.trades_duplicate ?? 0)}, ${p.counts.trades ?? 0}, null)`;
      });
      await refreshBarsWindow(barsDb(ctx.sql), b.instrument_id, iso(fromMs), iso(fetchedTo), ctx.signal);
    }
  }
  const [done] = await ctx.sql<{ state: string }[]>`
    select ops.backfill_chunk_finish(${chunk.chunk_id}, ${iso(fetchedTo)}::timestamptz) as state`;
  return done?.state ?? 'done';
}

/** A gap as quality.begin_gap_recovery() returns it. */
export interface GapRow {
  gap_id: string;
  venue: string;
  stream: string;
  symbol: string | null;
  instrument_id: number | null;
  from_ms: string;
  to_ms: string | null;
  from_seq: string | null;
  to_seq: string | null;
  timeframe: string | null;
}

export interface RecoveryResult { state: string; rows: number; missing: number | null }

/**
 * Recovers one gap from the venue's REST history: an id-sequenced stream (trades, aggregate
 * trades) by the ids missing between its bounds, candles by time. A stream the venue keeps no
 * history of ends unrecoverable at once. Throws (to be retried) while ids are still missing.
 */
export async function recoverGap(ctx: HistoryContext, landing: PageLanding, gap: GapRow): Promise<RecoveryResult> {
  const canonical = gap.symbol;
  if (!canonical) {
    await ctx.sql`select quality.end_gap(${gap.gap_id}, 'unrecoverable', 'the gap names no instrument')`;
    return { state: 'unrecoverable', rows: 0, missing: null };
  }
  const symbol = ctx.venue.venueSymbol(canonical);
  if (gap.to_ms === null) throw new TickflowError('VENUE_REST', `gap ${gap.gap_id} is still open (no end yet)`);
  if (ctx.venue.idStreams[gap.stream]) {
    if (gap.from_seq === null || gap.to_seq === null) {
      const ends = await fetchPages(ctx, [ctx.venue.idAt(symbol, Number(gap.from_ms)), ctx.venue.idAt(symbol, Number(gap.to_ms))]);
      await landing.land([...ends.good, ...ends.bad]);
      const [b] = await ctx.sql<{ from_seq: string | null; to_seq: string | null; instrument_id: number | null }[]>`
        select from_seq::text, to_seq::text, instrument_id from quality.bound_gap_by_agg_trades(${gap.gap_id})`;
      gap = { ...gap, from_seq: b?.from_seq ?? null, to_seq: b?.to_seq ?? null, instrument_id: b?.instrument_id ?? gap.instrument_id };
      if (gap.from_seq === null || gap.to_seq === null || gap.instrument_id === null) {
        throw new TickflowError('VENUE_REST', `gap ${gap.gap_id}: the venue has no ${gap.stream} after the gap yet to bound it`);
      }
    }
    const got = BigInt(gap.to_seq!) >= BigInt(gap.from_seq!)
      ? await fetchMissingIds(ctx, landing, gap.stream, canonical, gap.instrument_id!, gap.from_seq!, gap.to_seq!)
      : { rows: 0, missing: 0 };
    const [fin] = await ctx.sql<{ state: string; missing: string | null; window_from: string | null; window_to: string | null }[]>`
      select state, missing::text, window_from::text, window_to::text from quality.finish_gap_recovery(${gap.gap_id}, ${got.rows})`;
    if (fin?.state === 'recovered') {
      if (gap.stream === 'trade' && fin.window_from && fin.window_to) {
        await refreshBarsWindow(barsDb(ctx.sql), gap.instrument_id, fin.window_from, fin.window_to, ctx.signal);
      }
      return { state: 'recovered', rows: got.rows, missing: 0 };
    }
    throw new TickflowError('VENUE_REST', `gap ${gap.gap_id}: ${fin?.missing ?? '?'} ids of ${gap.from_seq}..${gap.to_seq} are still missing after recovery`);
  }
  if (gap.stream === 'candles' && gap.timeframe && ctx.venue.widthMs(gap.timeframe)) {
    const width = ctx.venue.widthMs(gap.timeframe)!;
    const from = Math.floor(Number(gap.from_ms) / width) * width;
    const to = Math.ceil(Number(gap.to_ms) / width) * width;
    const span = width * ctx.venue.pageSize;
    const pages: RestPage[] = [];
    for (let s = from; s < to; s += span) pages.push(ctx.venue.candlePage(symbol, gap.timeframe, s, Math.min(s + span, to)));
    const counts = await fetchAndLand(ctx, landing, pages, async () => {});
    const [fin] = await ctx.sql<{ state: string; missing: string }[]>`
      select state, missing::text from quality.finish_candle_gap(${gap.gap_id}, ${counts.candles ?? 0})`;
    return { state: fin?.state ?? 'recovering', rows: counts.candles ?? 0, missing: Number(fin?.missing ?? 0) };
  }
  await ctx.sql`select quality.end_gap(${gap.gap_id}, 'unrecoverable',
                  ${`${ctx.venue.venue} keeps no history of ${gap.stream} that its REST API can return`})`;
  return { state: 'unrecoverable', rows: 0, missing: null };
}
