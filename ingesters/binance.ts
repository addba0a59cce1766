import type { FeedConfig } from '../src/config.ts';
import { bookSync } from './runtime/book-sync.ts';
import type { Classified, WsVenue } from './runtime/venue.ts';

// Binance spot (and USD-M) combined streams. Streams are named in the URL, so there is no
// subscribe message; frames are {"stream":"<symbol>@<channel>","data":{...}}.
const CHANNEL_STREAM: Record<string, string> = {
  trade: 'trade',
  aggTrade: 'aggTrade',
  bookTicker: 'bookTicker',
  depth: 'depth@100ms',
};

const STREAM_RE = /^\{"stream":"([a-z0-9]+)@([A-Za-z]+)/;
const id = (re: RegExp, text: string): bigint | undefined => {
  const m = re.exec(text);
  return m ? BigInt(m[1]!) : undefined;
};

export const binance: WsVenue = {
  venue: 'binance',
  channels: Object.keys(CHANNEL_STREAM),
  maxConnectionSeconds: 24 * 3600,
  venueSymbol: (instrument) => instrument.replace('/', '').toLowerCase(),
  url(feed: FeedConfig) {
    const streams = feed.instruments.flatMap((i) =>
      feed.channels.map((c) => `${binance.venueSymbol(i)}@${CHANNEL_STREAM[c] ?? c}`));
    return `${feed.urls.ws ?? 'wss://stream.binance.com:9443'}/stream?streams=${streams.join('/')}`;
  },
  classify(text): Classified {
    const m = STREAM_RE.exec(text);
    if (m) return { kind: 'data', stream: m[2]!, key: m[1]! };
    if (text.includes('"serverShutdown"')) return { kind: 'shutdown' };
    if (text.startsWith('{"result"')) return { kind: 'ack' };
    if (text.startsWith('{"code"') || text.startsWith('{"error"')) return { kind: 'error' };
    return { kind: 'data', stream: 'unknown' };
  },
  gate: (ctx) => bookSync({
    diffStream: 'depth',
    snapshotStream: 'depth_snapshot',
    ids: (payload) => {
      const first = id(/"U":(\d+)/, payload);
      const last = id(/"u":(\d+)/, payload);
      return first === undefined || last === undefined ? undefined : { first, last, prev: id(/"pu":(\d+)/, payload) };
    },
    snapshotUrl: (key) => `${ctx.feed.urls.rest ?? 'https://api.binance.com'}/api/v3/depth?symbol=${key.toUpperCase()}&limit=1000`,
    snapshotLastId: (payload) => id(/"lastUpdateId":(\d+)/, payload),
  }, ctx),
};
