import type { HistoryVenue } from './runtime/history.ts';
import { RestRefused, type RestPage } from './runtime/rest.ts';
import { OANDA_HOSTS, oanda } from './oanda.ts';

// OANDA v20 REST history: GET /v3/instruments/{instrument}/candles with price=MBA (bid, ask and
// mid of every candle) by from/to windows of at most 5,000 candles (the venue's maximum).
// Bearer token (OANDA_TOKEN) in the Authorization header only. OANDA allows 120 requests per
// second per token and 2 new connections per second: we budget 100 requests a second and keep
// connections alive, paced. The host is an OANDA feed's `urls.rest`, else the REST host of its
// stream host (live or practice), else the practice host. Pages land raw (stream candles) and SQL reads them
// (sql/venues/oanda_020_normalize_v1.sql): a candle served while open (complete false) is kept
// as incomplete and replaced when the complete one lands; volume is a tick count.
const MAX_CANDLES = 5000;

// Timeframe -> OANDA granularity and width (daily-aligned granularities are asked aligned to
// 00:00 UTC, the plan's grid; W and M are calendar buckets and not planned).
const GRANULARITIES: Record<string, [string, number]> = {
  '5s': ['S5', 5_000], '10s': ['S10', 10_000], '15s': ['S15', 15_000], '30s': ['S30', 30_000],
  '1m': ['M1', 60_000], '2m': ['M2', 120_000], '4m': ['M4', 240_000], '5m': ['M5', 300_000], '10m': ['M10', 600_000],
  '15m': ['M15', 900_000], '30m': ['M30', 1_800_000], '1h': ['H1', 3_600_000], '2h': ['H2', 7_200_000],
  '3h': ['H3', 10_800_000], '4h': ['H4', 14_400_000], '6h': ['H6', 21_600_000], '8h': ['H8', 28_800_000],
  '12h': ['H12', 43_200_000], '1d': ['D', 86_400_000],
};

/** Our own plan time as RFC 3339 (whole seconds: every window edge is one). */
const rfc3339 = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export const oandaRest: HistoryVenue = {
  venue: 'oanda',
  defaultBaseUrl: OANDA_HOSTS.practice.rest,
  defaultLimits: [{ name: 'requests', unit: 'requests', windowSeconds: 1, max: 100 }],
  maxNewConnectionsPerSecond: 2,
  // A feed on the live stream host reads history from the live REST host (a token is for one of them).
  restUrlFor: (urls) => Object.values(OANDA_HOSTS).find((h) => urls.stream?.replace(/\/$/, '') === h.stream)?.rest,
  headers(secrets) {
    if (!secrets.OANDA_TOKEN) throw new RestRefused('OANDA history: expected OANDA_TOKEN (or OANDA_TOKEN_FILE) in the environment, received nothing');
    return { authorization: `Bearer ${secrets.OANDA_TOKEN}`, 'accept-datetime-format': 'RFC3339' };
  },
  // 429: too many requests (or new connections); 5xx: retried; 400 (bad parameters), 401/403
  // (token), 404 (instrument): retrying cannot help.
  classify: (status) => (status === 200 ? 'ok' : status === 429 ? 'throttled' : status >= 500 || status === 408 ? 'retry' : 'refused'),
  // A candles answer is one JSON object: one that does not end like one was cut short.
  complete: (_page, body) => body.trimEnd().endsWith('}'),
  venueSymbol: (symbol) => oanda.venueSymbol(symbol),
  timeframes: Object.keys(GRANULARITIES),
  widthMs: (timeframe) => GRANULARITIES[timeframe]?.[1],
  pageSize: MAX_CANDLES,

  candlePage(symbol, timeframe, fromMs, toMs): RestPage {
    const [granularity] = GRANULARITIES[timeframe]!;
    // `to` one second inside the window (the candle opening at toMs is the next window's), and
    // never in the future: the venue refuses that ("Time is in the future").
    const to = Math.max(fromMs, Math.min(toMs, Math.floor(Date.now() / 1000) * 1000) - 1000);
    const query: Array<[string, string]> = [['price', 'MBA'], ['granularity', granularity], ['from', rfc3339(fromMs)], ['to', rfc3339(to)]];
    if (/^(H([2-9]|1[0-2])|D)$/.test(granularity)) query.push(['dailyAlignment', '0'], ['alignmentTimezone', 'UTC']);
    return { stream: 'candles', path: `/v3/instruments/${symbol}/candles`, weight: 1, query };
  },

  idStreams: {},
  idAt: () => { throw new RestRefused('OANDA keeps no trade history: backfill candles (bid, ask and mid)'); },
};
