import type { HistoryVenue } from './runtime/history.ts';
import { RestRefused, type RestPage } from './runtime/rest.ts';
import { POLYGON_INDEX_TICKERS } from './polygon.ts';

// Polygon.io (also served as Massive) REST history: aggregates
// GET /v2/aggs/ticker/{ticker}/range/{n}/{timespan}/{from}/{to}?adjusted=false&sort=asc&limit=50000
// with from/to as our own plan times in milliseconds (both inclusive), following next_url when
// the venue cuts an answer. The API key (POLYGON_API_KEY) goes in the Authorization header, never
// in the query. Plan limits differ (the free plan allows 5 requests a minute): the default budget
// is that; a paid plan raises it with ops.set_rate_limit('polygon', 'requests', 'requests',
// '1 minute', <n>). Pages land raw (stream aggs) and SQL reads them
// (sql/venues/polygon_020_normalize_v1.sql). Tickers: C:EURUSD (forex), I:NDX (indices), AAPL
// (stocks), X:BTCUSD (crypto); adjusted=false is stated for every ticker (stock bars as traded).
const LIMIT = 50_000;

const TIMESPANS: Record<string, [number, string, number]> = {
  '1s': [1, 'second', 1_000], '1m': [1, 'minute', 60_000], '5m': [5, 'minute', 300_000], '15m': [15, 'minute', 900_000],
  '30m': [30, 'minute', 1_800_000], '1h': [1, 'hour', 3_600_000], '4h': [4, 'hour', 14_400_000], '1d': [1, 'day', 86_400_000],
};

// Currencies that make a pair a crypto pair (X:); other three-letter pairs are forex (C:).
const CRYPTO = new Set(['BTC', 'ETH', 'SOL', 'XRP', 'LTC', 'BCH', 'ADA', 'DOGE', 'DOT', 'LINK', 'AVAX', 'MATIC', 'USDT', 'USDC', 'DAI']);

/** The REST ticker of a canonical instrument: EUR/USD -> C:EURUSD, BTC/USD -> X:BTCUSD, NAS100 -> I:NDX, AAPL -> AAPL. */
export function polygonRestTicker(symbol: string): string {
  const index = POLYGON_INDEX_TICKERS[symbol];
  if (index) return index;
  const [base, quote] = symbol.split('/');
  if (quote === undefined) return symbol;
  const crypto = CRYPTO.has(base!) || CRYPTO.has(quote) || base!.length !== 3 || quote.length !== 3;
  return `${crypto ? 'X' : 'C'}:${base}${quote}`;
}

export const polygonRest: HistoryVenue = {
  venue: 'polygon',
  defaultBaseUrl: 'https://api.polygon.io',
  defaultLimits: [{ name: 'requests', unit: 'requests', windowSeconds: 60, max: 5 }],
  headers(secrets) {
    if (!secrets.POLYGON_API_KEY) throw new RestRefused('Polygon history: expected POLYGON_API_KEY (or POLYGON_API_KEY_FILE) in the environment, received nothing');
    return { authorization: `Bearer ${secrets.POLYGON_API_KEY}` };
  },
  // 429: over the plan's limit; 5xx retried; 400, 401 (key), 403 (plan), 404: final.
  classify: (status) => (status === 200 ? 'ok' : status === 429 ? 'throttled' : status >= 500 || status === 408 ? 'retry' : 'refused'),
  complete: (_page, body) => body.trimEnd().endsWith('}'),
  venueSymbol: polygonRestTicker,
  timeframes: Object.keys(TIMESPANS),
  widthMs: (timeframe) => TIMESPANS[timeframe]?.[2],
  pageSize: LIMIT,

  candlePage(ticker, timeframe, fromMs, toMs): RestPage {
    const [n, span] = TIMESPANS[timeframe]!;
    return { stream: 'aggs', path: `/v2/aggs/ticker/${ticker}/range/${n}/${span}/${fromMs}/${toMs - 1}`, weight: 1,
      query: [['adjusted', 'false'], ['sort', 'asc'], ['limit', String(LIMIT)]] };
  },

  // next_url: the venue's cursor, read from the page (results hold only numbers, so the key is
  // the page's own). Its host is the venue's public one; the request goes to our configured base.
  nextPage(page, body) {
    const at = body.lastIndexOf('"next_url"');
    if (at < 0) return undefined;
    const value = /^"next_url"\s*:\s*("(?:[^"\\]|\\.)*")/.exec(body.slice(at, at + 4096))?.[1];
    if (!value) return undefined;
    const next = new URL(JSON.parse(value) as string);
    return { stream: page.stream, path: next.pathname, weight: page.weight, query: [...next.searchParams.entries()].filter(([k]) => k.toLowerCase() !== 'apikey') };
  },

  idStreams: {},
  idAt: () => { throw new RestRefused('Polygon trade history is not backfilled here: backfill aggregates (candles)'); },
};
