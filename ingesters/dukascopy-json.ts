import type { HistoryVenue } from './runtime/history.ts';
import { RestRefused, type RestPage } from './runtime/rest.ts';

// Dukascopy's JSON API (https://jetta.dukascopy.com/v1), which replaced the .bi5 file server in
// 2026: the same periods as the files (an hour of ticks, a day of minute candles, a month of
// hourly ones, a year of daily ones), as JSON with base values and delta-encoded columns; the
// month in the path is 1-based and not zero-padded, instruments are written EUR-USD:
//   /v1/ticks/EUR-USD/2026/7/13/12     /v1/candles/minute/BTC-USD/BID/2023/2/19
//   /v1/candles/hour/BTC-USD/BID/2023/2     /v1/candles/day/BTC-USD/BID/2022
// (The minute-candle form is the one recorded with the captured answers; the others follow the
// captured answers' names.) Answers land verbatim as venue 'dukascopy-json' and SQL reads them
// (sql/venues/dukascopy_020_json_v1.sql) into the same instruments and keys as the files, so an
// hour fetched from both is stored once. A second history source of the venue, chosen by name:
// tickflow backfill --venue dukascopy-json. Same politeness as the files: ten answers a second.

const HOUR = 3_600_000;

const page = (stream: string, path: string): RestPage => ({ stream, path, query: [], weight: 1 });

/** Starts of the UTC days, months or years that [fromMs, toMs) touches. */
function periods(fromMs: number, toMs: number, unit: 'day' | 'month' | 'year'): Date[] {
  const out: Date[] = [];
  const d = new Date(fromMs);
  let t = new Date(unit === 'day' ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate())
    : unit === 'month' ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) : Date.UTC(d.getUTCFullYear(), 0, 1));
  while (t.getTime() < toMs) {
    out.push(t);
    t = new Date(unit === 'day' ? t.getTime() + 24 * HOUR
      : unit === 'month' ? Date.UTC(t.getUTCFullYear(), t.getUTCMonth() + 1, 1) : Date.UTC(t.getUTCFullYear() + 1, 0, 1));
  }
  return out;
}

const ymd = (d: Date, depth: 'day' | 'month' | 'year'): string =>
  [d.getUTCFullYear(), depth !== 'year' ? d.getUTCMonth() + 1 : undefined, depth === 'day' ? d.getUTCDate() : undefined]
    .filter((x) => x !== undefined).join('/');

const CANDLES = { '1m': ['day', 'minute', 'candles_m1'], '1h': ['month', 'hour', 'candles_h1'], '1d': ['year', 'day', 'candles_d1'] } as const;

export const dukascopyJson: HistoryVenue = {
  venue: 'dukascopy-json',
  defaultBaseUrl: 'https://jetta.dukascopy.com',
  defaultLimits: [{ name: 'answers', unit: 'requests', windowSeconds: 1, max: 10 }],
  classify: (status) => (status === 200 ? 'ok' : status === 429 ? 'throttled'
    : status >= 500 || status === 408 ? 'retry' : 'refused'),
  // Every answer is one JSON object; one that does not end like one was cut short.
  complete: (_page, body) => /\}\s*$/.test(body.slice(-16)),
  venueSymbol: (symbol) => symbol.replace('/', '-').toUpperCase(),
  timeframes: Object.keys(CANDLES),
  widthMs: (timeframe) => ({ '1m': 60_000, '1h': HOUR, '1d': 24 * HOUR } as Record<string, number>)[timeframe],
  pageSize: 1,
  candlePage: () => { throw new RestRefused('dukascopy-json serves candles by period (filePages), not as pages'); },
  idStreams: {},
  idAt: () => { throw new RestRefused('dukascopy-json has no trades by id'); },

  filePages: (symbol, kind, timeframe, fromMs, toMs) => {
    if (!/^[A-Z0-9]{2,20}-[A-Z0-9]{2,20}$/.test(symbol)) throw new RestRefused(`dukascopy-json: expected an instrument such as EUR/USD, received ${symbol}`);
    if (kind === 'ticks') {
      const out: RestPage[] = [];
      for (let t = Math.floor(fromMs / HOUR) * HOUR; t < toMs; t += HOUR) {
        const d = new Date(t);
        out.push(page('ticks', `/v1/ticks/${symbol}/${ymd(d, 'day')}/${d.getUTCHours()}`));
      }
      return out;
    }
    const spec = kind === 'candles' && timeframe ? CANDLES[timeframe as keyof typeof CANDLES] : undefined;
    if (!spec) throw new RestRefused(`dukascopy-json has ticks and 1m, 1h and 1d candles, not ${kind} ${timeframe ?? ''}`);
    const [unit, name, stream] = spec;
    return periods(fromMs, toMs, unit).flatMap((d) => ['BID', 'ASK'].map((side) =>
      page(stream, `/v1/candles/${name}/${symbol}/${side}/${ymd(d, unit)}`)));
  },
};
