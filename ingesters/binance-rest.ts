import type { HistoryVenue } from './runtime/history.ts';
import type { RestPage } from './runtime/rest.ts';

// Binance spot REST history. Weights and limits as the venue documents them: klines 2,
// aggTrades 4, historicalTrades 25 (no key needed for market data); 6,000 weight per minute per
// IP, counted back in X-MBX-USED-WEIGHT-1M; 429 = back off (Retry-After), 418 = banned for
// Retry-After seconds. Answers land raw (streams klines, aggTrades, historicalTrades) and SQL
// reads them (sql/venues/binance_040_rest_v1.sql).
const LIMIT = 1000;

// Kline interval -> bucket width in ms (fixed widths only; 1w and 1M are calendar buckets).
const WIDTH_MS: Record<string, number> = {
  '1s': 1_000, '1m': 60_000, '3m': 180_000, '5m': 300_000, '15m': 900_000, '30m': 1_800_000,
  '1h': 3_600_000, '2h': 7_200_000, '4h': 14_400_000, '6h': 21_600_000, '8h': 28_800_000,
  '12h': 43_200_000, '1d': 86_400_000, '3d': 259_200_000,
};

const page = (stream: string, path: string, weight: number, query: Array<[string, string]>): RestPage =>
  ({ stream, path, weight, query });

export const binanceRest: HistoryVenue = {
  venue: 'binance',
  defaultBaseUrl: 'https://api.binance.com',
  // 5,000 of the venue's 6,000: room for the live feeds' depth snapshots and for clocks that
  // disagree at the minute boundary.
  defaultLimits: [{ name: 'request_weight', unit: 'weight', windowSeconds: 60, max: 5000 }],
  usedHeader: { header: 'x-mbx-used-weight-1m', limit: 'request_weight' },
  classify: (status) => (status === 200 ? 'ok' : status === 429 ? 'throttled' : status === 418 ? 'banned'
    : status >= 500 || status === 408 ? 'retry' : 'refused'),
  // Every history endpoint answers a JSON array; one that does not end like one was cut short.
  // (Read from the end: a regular expression would scan a whole page.)
  complete: (_page, body) => {
    let k = body.length - 1;
    while (k >= 0 && (body.charCodeAt(k) === 32 || body.charCodeAt(k) === 10 || body.charCodeAt(k) === 13 || body.charCodeAt(k) === 9)) k--;
    return k >= 0 && body.charCodeAt(k) === 93; // ']'
  },
  venueSymbol: (symbol) => symbol.replace('/', '').toUpperCase(),
  timeframes: Object.keys(WIDTH_MS),
  widthMs: (timeframe) => WIDTH_MS[timeframe],
  pageSize: LIMIT,

  candlePage: (symbol, timeframe, fromMs, toMs) => page('klines', '/api/v3/klines', 2, [['symbol', symbol],
    ['interval', timeframe], ['startTime', String(fromMs)], ['endTime', String(toMs - 1)], ['limit', String(LIMIT)]]),

  idStreams: {
    // Individual trades by id: aggTrades merge the fills of one taker order at one price into one
    // row (summed quantity), so the trades table can only be made whole from historicalTrades.
    trade: (symbol, fromId, limit) => page('historicalTrades', '/api/v3/historicalTrades', 25,
      [['symbol', symbol], ['fromId', fromId], ['limit', String(limit)]]),
    aggTrade: (symbol, fromId, limit) => page('aggTrades', '/api/v3/aggTrades', 4,
      [['symbol', symbol], ['fromId', fromId], ['limit', String(limit)]]),
  },

  // The first aggregate trade at or after a time: its f (first trade id) and a (its own id)
  // bound an id range by time.
  // (The venue wants startTime and endTime less than an hour apart.)
  idAt: (symbol, atMs) => page('aggTrades', '/api/v3/aggTrades', 4,
    [['symbol', symbol], ['startTime', String(atMs)], ['endTime', String(atMs + 3_599_999)], ['limit', '1']]),
};
