import type { FeedConfig } from '../src/config.ts';
import { TickflowError } from '../src/errors.ts';
import type { Classified, Secrets, WsVenue } from './runtime/venue.ts';

// OANDA v20 pricing stream: GET /v3/accounts/{account}/pricing/stream?instruments=A,B over
// HTTP/1.1 chunked transfer, one JSON object per line: {"type":"PRICE",...} and a
// {"type":"HEARTBEAT",...} about every 5 s. Bearer token in the Authorization header; the
// account id (not a secret) is in the path. Prices are read by sql/venues/oanda_*.sql.
export const OANDA_HOSTS = {
  practice: { stream: 'https://stream-fxpractice.oanda.com', rest: 'https://api-fxpractice.oanda.com' },
  live: { stream: 'https://stream-fxtrade.oanda.com', rest: 'https://api-fxtrade.oanda.com' },
} as const;

export const oanda: WsVenue = {
  venue: 'oanda',
  channels: ['pricing'],
  transport: 'http-stream',
  // OANDA's best practices: at most 2 new connections per second per client.
  maxNewConnectionsPerSecond: 2,
  // Heartbeats come about every 5 s: 10 s of silence is a dead stream.
  maxStaleSeconds: 10,
  venueSymbol: (instrument) => instrument.replace('/', '_'),
  validate(feed: FeedConfig, secrets: Secrets) {
    if (!feed.account) {
      throw new TickflowError('CONFIG_INVALID', `feeds.${feed.name}.account: expected the OANDA v20 account id, received nothing`);
    }
    if (!secrets.OANDA_TOKEN) {
      throw new TickflowError('CONFIG_INVALID', `feeds.${feed.name}: expected OANDA_TOKEN (or OANDA_TOKEN_FILE) in the environment, received nothing`);
    }
  },
  url(feed) {
    const instruments = feed.instruments.map((i) => oanda.venueSymbol(i)).join(',');
    return `${feed.urls.stream ?? OANDA_HOSTS.practice.stream}/v3/accounts/${feed.account}/pricing/stream?instruments=${encodeURIComponent(instruments)}`;
  },
  headers: (_feed, secrets) => ({ authorization: `Bearer ${secrets.OANDA_TOKEN}`, 'accept-datetime-format': 'RFC3339' }),
  classify(text): Classified {
    if (text.includes('"type":"HEARTBEAT"')) return { kind: 'heartbeat' };
    if (text.includes('"type":"PRICE"')) return { kind: 'data', stream: 'pricing' };
    if (text.includes('"errorMessage"')) return { kind: 'error' };
    return { kind: 'data', stream: 'pricing' }; // unknown: landed, and quarantined by SQL with its reason
  },
};
