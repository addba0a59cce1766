import type { HistoryVenue } from './runtime/history.ts';
import { RestRefused, type RestPage } from './runtime/rest.ts';
import { isTickflowError } from '../src/errors.ts';
import { dukascopyLandedAsync, dukascopyUndecodable } from './dukascopy/land.ts';

// Dukascopy's datafeed: history as files, {base}/{SYMBOL}/{YYYY}/{MM}/{DD}/{HH}h_ticks.bi5 for an
// hour of ticks, .../{DD}/{BID|ASK}_candles_min_1.bi5 for a day of minute candles,
// .../{MM}/..._candles_hour_1.bi5 for a month of hourly ones, {YYYY}/..._candles_day_1.bi5 for a
// year of daily ones; the month is 0-based. A closed hour is an empty file. The venue publishes
// no limits and throttles clients that pull fast, so the default budget is ten files a second
// (a few in flight per job); ops.set_rate_limit('dukascopy', ...) changes it.
// Files are decoded here (binary: ingesters/dukascopy/bi5.ts) into the venue's own integers and
// land as source 'file'; SQL reads them (sql/venues/dukascopy_010_normalize_v1.sql).

/** Price divisors (10^priceScale of the venue's instrument metadata); files do not carry them. */
const POINTS: Readonly<Record<string, number>> = Object.freeze({
  EURUSD: 1e5, GBPUSD: 1e5, AUDUSD: 1e5, NZDUSD: 1e5, USDCAD: 1e5, USDCHF: 1e5, EURGBP: 1e5, EURCHF: 1e5,
  USDMXN: 1e5, USDTRY: 1e5, USDZAR: 1e5, USDSEK: 1e5, USDNOK: 1e5, EURNOK: 1e5, USDPLN: 1e5,
  EURJPY: 1e3, GBPJPY: 1e3, USDJPY: 1e3, AUDJPY: 1e3, CHFJPY: 1e3, CADJPY: 1e3, USDHUF: 1e3,
  XAUUSD: 1e3, XAGUSD: 1e3, BTCUSD: 10, ETHUSD: 10,
});

const HOUR = 3_600_000;
const pad2 = (n: number): string => (n < 10 ? `0${n}` : `${n}`);

function pointOf(instrument: string): number {
  const point = POINTS[instrument];
  if (point === undefined) {
    throw new RestRefused(`dukascopy: no price scale is known for ${instrument} (known: ${Object.keys(POINTS).join(', ')})`);
  }
  return point;
}

/** /EURUSD/2019/01/04 for 2019-02-04 (month 0-based), to the day, month or year. */
function dir(instrument: string, ms: number, depth: 'day' | 'month' | 'year'): string {
  const d = new Date(ms);
  const y = `/${instrument}/${d.getUTCFullYear()}`;
  if (depth === 'year') return y;
  const m = `${y}/${pad2(d.getUTCMonth())}`;
  return depth === 'month' ? m : `${m}/${pad2(d.getUTCDate())}`;
}

const file = (stream: string, path: string): RestPage => ({ stream, path, query: [], weight: 1, source: 'file' });

/** Starts of the UTC days, months or years that [fromMs, toMs) touches. */
function periods(fromMs: number, toMs: number, unit: 'day' | 'month' | 'year'): number[] {
  const out: number[] = [];
  const d = new Date(fromMs);
  let t = unit === 'day' ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate())
    : unit === 'month' ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) : Date.UTC(d.getUTCFullYear(), 0, 1);
  while (t < toMs) {
    out.push(t);
    const n = new Date(t);
    t = unit === 'day' ? t + 24 * HOUR : unit === 'month' ? Date.UTC(n.getUTCFullYear(), n.getUTCMonth() + 1, 1)
      : Date.UTC(n.getUTCFullYear() + 1, 0, 1);
  }
  return out;
}

const CANDLE_FILES = { '1m': ['day', 'min', 'candles_m1'], '1h': ['month', 'hour', 'candles_h1'], '1d': ['year', 'day', 'candles_d1'] } as const;

export const dukascopyRest: HistoryVenue = {
  venue: 'dukascopy',
  defaultBaseUrl: 'https://datafeed.dukascopy.com/datafeed',
  defaultLimits: [{ name: 'files', unit: 'requests', windowSeconds: 1, max: 10 }],
  classify: (status) => (status === 200 ? 'ok' : status === 429 ? 'throttled'
    : status >= 500 || status === 408 ? 'retry' : 'refused'),
  complete: () => true, // decode checks the whole file
  decode: async (page, body) => {
    const path = page.path.replace(/^\//, '');
    const instrument = path.slice(0, path.indexOf('/'));
    const point = POINTS[instrument] ?? 0;
    try {
      return await dukascopyLandedAsync(path, body, point);
    } catch (err) {
      if (!isTickflowError(err, 'VENUE_FILE_CORRUPT')) throw err;
      return { payload: dukascopyUndecodable(path, body, point, err.message), problem: err.message };
    }
  },
  venueSymbol: (symbol) => symbol.replace('/', '').toUpperCase(),
  timeframes: Object.keys(CANDLE_FILES),
  widthMs: (timeframe) => ({ '1m': 60_000, '1h': HOUR, '1d': 24 * HOUR } as Record<string, number>)[timeframe],
  pageSize: 1,
  candlePage: () => { throw new RestRefused('dukascopy serves candles as files (filePages), not as pages'); },
  idStreams: {},
  idAt: () => { throw new RestRefused('dukascopy has no trades by id'); },

  filePages: (symbol, kind, timeframe, fromMs, toMs) => {
    pointOf(symbol);
    if (kind === 'ticks') {
      const out: RestPage[] = [];
      for (let t = Math.floor(fromMs / HOUR) * HOUR; t < toMs; t += HOUR) {
        out.push(file('ticks', `${dir(symbol, t, 'day')}/${pad2(new Date(t).getUTCHours())}h_ticks.bi5`));
      }
      return out;
    }
    const spec = kind === 'candles' && timeframe ? CANDLE_FILES[timeframe as keyof typeof CANDLE_FILES] : undefined;
    if (!spec) throw new RestRefused(`dukascopy has files of ticks and of 1m, 1h and 1d candles, not ${kind} ${timeframe ?? ''}`);
    const [unit, name, stream] = spec;
    return periods(fromMs, toMs, unit).flatMap((t) => ['BID', 'ASK'].map((side) =>
      file(stream, `${dir(symbol, t, unit)}/${side}_candles_${name}_1.bi5`)));
  },
};
