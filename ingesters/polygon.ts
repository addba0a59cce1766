import type { FeedConfig } from '../src/config.ts';
import { TickflowError } from '../src/errors.ts';
import type { Classified, Handshake, Secrets, WsVenue } from './runtime/venue.ts';

// Polygon.io (also served as Massive): one WebSocket per cluster at <base>/<cluster>. On
// connect the venue sends [{"ev":"status","status":"connected"}]; we send {"action":"auth"},
// wait for auth_success (auth_failed is a refusal), then subscribe "<EV>.<ticker>,...". Every
// frame is a JSON array of events, possibly of several types; SQL (sql/venues/polygon_*.sql)
// splits and reads them. A feed's channels are "<cluster>:<event>" and name one cluster.
export const POLYGON_CLUSTERS = {
  forex: ['C', 'CA'],
  indices: ['V', 'AM'],
  stocks: ['T', 'Q', 'AM'],
  crypto: ['XT', 'XQ', 'XA'],
} as const;
type Cluster = keyof typeof POLYGON_CLUSTERS;

/** Canonical index names and Polygon's index tickers (sql/venues/polygon_010_symbols.sql holds the same table). */
export const POLYGON_INDEX_TICKERS: Readonly<Record<string, string>> = Object.freeze({
  US30: 'I:DJI', NAS100: 'I:NDX', SPX500: 'I:SPX',
});

const clusterOf = (feed: FeedConfig): Cluster => feed.channels[0]!.split(':')[0] as Cluster;

/** The ticker form a subscription uses in a cluster: EUR/USD, BTC-USD, I:SPX, AAPL. */
export function polygonWsTicker(cluster: Cluster, instrument: string): string {
  switch (cluster) {
    case 'forex': return instrument;
    case 'crypto': return instrument.replace('/', '-');
    case 'indices': return POLYGON_INDEX_TICKERS[instrument] ?? `I:${instrument}`;
    case 'stocks': return instrument;
  }
}

const STATUS_ERRORS = ['"status":"auth_failed"', '"status":"max_connections"', '"status":"error"'];

export const polygon: WsVenue = {
  venue: 'polygon',
  channels: Object.entries(POLYGON_CLUSTERS).flatMap(([c, evs]) => evs.map((ev) => `${c}:${ev}`)),
  venueSymbol: (instrument) => instrument,
  validate(feed, secrets: Secrets) {
    const clusters = new Set(feed.channels.map((c) => c.split(':')[0]));
    if (clusters.size !== 1) {
      throw new TickflowError('CONFIG_INVALID',
        `feeds.${feed.name}.channels: expected channels of one Polygon cluster (one connection per cluster), received ${feed.channels.join(', ')}`);
    }
    if (!secrets.POLYGON_API_KEY) {
      throw new TickflowError('CONFIG_INVALID', `feeds.${feed.name}: expected POLYGON_API_KEY (or POLYGON_API_KEY_FILE) in the environment, received nothing`);
    }
  },
  url: (feed) => `${feed.urls.ws ?? 'wss://socket.polygon.io'}/${clusterOf(feed)}`,
  handshake(_feed, secrets): Handshake {
    let state: 'connecting' | 'authenticating' = 'connecting';
    return {
      open: () => ({}),
      frame(text) {
        if (state === 'connecting' && text.includes('"status":"connected"')) {
          state = 'authenticating';
          // The key travels only in this message; the runtime never records what it sends.
          return { send: [JSON.stringify({ action: 'auth', params: secrets.POLYGON_API_KEY })] };
        }
        if (state === 'authenticating' && text.includes('"status":"auth_success"')) return { done: true };
        if (text.includes('"status":"auth_failed"')) return { refused: 'authentication failed (auth_failed)' };
        if (text.includes('"status":"max_connections"')) return { refused: 'connection limit of the key reached (max_connections)' };
        return {};
      },
    };
  },
  subscribeMessages(feed) {
    const cluster = clusterOf(feed);
    const params = feed.channels.flatMap((c) => feed.instruments.map((i) => `${c.split(':')[1]}.${polygonWsTicker(cluster, i)}`));
    return [JSON.stringify({ action: 'subscribe', params: params.join(',') })];
  },
  classify(text, feed): Classified {
    if (text.startsWith('[{"ev":"status"')) {
      return STATUS_ERRORS.some((s) => text.includes(s)) ? { kind: 'error' } : { kind: 'ack' };
    }
    return { kind: 'data', stream: clusterOf(feed) };
  },
};
