import { EventName } from '@stoqey/ib';
import type { FeedConfig } from '../src/config.ts';
import { TickflowError } from '../src/errors.ts';
import { receiveTime } from './runtime/clock.ts';
import type { Transport, TransportHandlers } from './runtime/transport.ts';
import type { Classified, WsVenue } from './runtime/venue.ts';
import { TwsClient, TwsRequestError, twsSettings, type QualifiedContract } from './ibkr-tws.ts';

// Interactive Brokers live, through TWS / IB Gateway (the API socket, not a WebSocket): per
// contract, tick-by-tick trades (AllLast), tick-by-tick best bid/ask (BidAsk) and 5-second
// real-time bars (RealTimeBars: TRADES, or MIDPOINT for cash, which has no trades). Contracts
// are qualified once (reqContractDetails) and cached. Frames are JSON objects of the wire fields
// as text, stream first, plus the contract they belong to; SQL reads them
// (sql/venues/ibkr_020_normalize_v1.sql). Messages without data become control frames
// ({"notice": code, ...}) that classify() turns into ops events:
//   1100 connectivity TWS-IBKR lost; 1102 restored, data kept (nothing to do); 1101 restored,
//   data lost: every subscription is requested again. SQL opens a gap at 1100 and closes it at
//   1101/1102 (ibkr_030_connectivity.sql).
//   2103/2105/2157 a data farm is down, 2104/2106/2158 up again: recorded, the socket is kept.
//   An error for one request (10089 no market-data permission, 200 unknown contract, 354 not
//   subscribed ...) is reported for that contract and stream; the other contracts keep streaming.
//   A refusal for lack of permission (10089, 354) is asked again every tws.permissionRetrySeconds
//   (10 minutes), so a subscription added to the account starts streaming without a reconnect.
// Pacing is avoided, not retried: one tick-by-tick request per instrument and type per 15 s
// (a resubscription waits), 40 messages a second at most; a pacing error (162, 420) waits that
// spacing before asking again, doubling at each repeat.

export const IB_CHANNELS = ['AllLast', 'BidAsk', 'RealTimeBars'] as const;
type Channel = typeof IB_CHANNELS[number];

const FARM_DOWN = new Set([2103, 2105, 2157]);
const FARM_UP = new Set([2104, 2106, 2107, 2108, 2119, 2158]);
const MEANING: Record<number, string> = {
  1100: 'connectivity between TWS and IBKR lost',
  1101: 'connectivity restored, market data lost: every subscription requested again',
  1102: 'connectivity restored, market data kept',
  1300: 'TWS socket port reset: TWS will close this connection',
  2103: 'market data farm disconnected (socket kept)',
  2105: 'historical data farm disconnected (socket kept)',
  2157: 'security definition farm disconnected (socket kept)',
};
const PACING_CODES = new Set([162, 420]);
const PERMISSION_CODES = new Set([354, 10089]);

/** The last tick-by-tick request per Gateway, contract and tick type (monotonic ms), across reconnects. */
const lastTickByTick = new Map<string, number>();

interface Sub { instrument: string; channel: Channel; q: QualifiedContract; what: string; pacingRetries: number }

/** The wire fields of a data message (99 tick-by-tick, 50 real-time bar), by name; undefined for any other message. */
function wireRecord(f: string[]): { reqId: string; fields: Record<string, string> } | undefined {
  if (f[0] === '99') {
    const t = f[2];
    if (t === '1' || t === '2') {
      return { reqId: f[1]!, fields: { tickType: t, time: f[3]!, price: f[4]!, size: f[5]!, mask: f[6]!, exchange: f[7] ?? '',
        specialConditions: f[8] ?? '' } };
    }
    if (t === '3') {
      return { reqId: f[1]!, fields: { tickType: t, time: f[3]!, bidPrice: f[4]!, askPrice: f[5]!, bidSize: f[6]!, askSize: f[7]!,
        mask: f[8]! } };
    }
    return undefined;
  }
  if (f[0] === '50') {
    // version, reqId, time, open, high, low, close, volume, wap, count (the library's realtimeBar
    // event passes them in this order; its historicalData event puts the bar count before the WAP)
    return { reqId: f[2]!, fields: { time: f[3]!, open: f[4]!, high: f[5]!, low: f[6]!, close: f[7]!, volume: f[8]!, wap: f[9]!,
      count: f[10]! } };
  }
  return undefined;
}

function openTwsTransport(feed: FeedConfig, h: TransportHandlers): Transport {
  const tws = twsSettings(feed);
  const client = new TwsClient({ host: tws.host, port: tws.port, clientId: tws.clientId });
  const subs = new Map<number, Sub>();
  const timers = new Set<NodeJS.Timeout>();
  let open = false;
  let closed = false;
  let lastDataAt: string | undefined;
  let generation = 0;

  const control = (o: Record<string, unknown>) => { if (!closed) h.onMessage(JSON.stringify(o), false); };
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => { timers.delete(t); if (!closed) fn(); }, ms);
    timers.add(t);
  };

  client.onWire((fields) => {
    if (closed) return;
    h.onActivity();
    const rec = wireRecord(fields);
    if (!rec) return;
    const sub = subs.get(Number(rec.reqId));
    if (!sub) return; // a late message of a request we replaced or cancelled
    const receivedAt = receiveTime();
    lastDataAt = receivedAt;
    h.onMessage(JSON.stringify({ stream: sub.channel, conId: sub.q.conId, symbol: sub.instrument, secType: sub.q.secType,
      what: sub.what, serverVersion: String(client.ib.serverVersion), reqId: rec.reqId, ...rec.fields }), false);
  });

  const request = (sub: Sub) => {
    if (closed) return;
    const key = `${client.key}|${sub.q.conId}|${sub.what}`;
    if (sub.channel !== 'RealTimeBars') {
      const wait = (lastTickByTick.get(key) ?? -Infinity) + tws.tickByTickSpacingMs - performance.now();
      if (wait > 0) { later(wait, () => request(sub)); return; }
      lastTickByTick.set(key, performance.now());
    }
    const reqId = client.reqId();
    subs.set(reqId, sub);
    if (sub.channel === 'RealTimeBars') client.ib.reqRealTimeBars(reqId, sub.q.contract, 5, sub.what as never, false);
    else client.ib.reqTickByTickData(reqId, sub.q.contract, sub.what as never, 0, false);
    control({ notice: 'requested', reqId: String(reqId), symbol: sub.instrument, stream: sub.channel, conId: sub.q.conId });
  };

  const subscribeAll = async (gen: number) => {
    for (const instrument of feed.instruments) {
      let q: QualifiedContract;
      try {
        q = await client.qualify(instrument);
      } catch (err) {
        const code = err instanceof TwsRequestError ? err.code : 0;
        control({ notice: String(code), reqId: '', symbol: instrument, stream: 'contract', message: (err as Error).message });
        continue;
      }
      if (closed || gen !== generation) return;
      for (const channel of feed.channels as Channel[]) {
        const cash = q.secType === 'CASH';
        if (channel === 'AllLast' && cash) {
          control({ notice: 'skipped', symbol: instrument, stream: channel, message: 'cash (forex) contracts have no trades' });
          continue;
        }
        const what = channel === 'RealTimeBars' ? (cash ? 'MIDPOINT' : 'TRADES') : channel;
        request({ instrument, channel, q, what, pacingRetries: 0 });
      }
    }
  };

  client.ib.on(EventName.nextValidId, () => {
    if (open || closed) return;
    open = true;
    h.onOpen();
    void subscribeAll(generation);
  });
  // Messages for no request (id -1) arrive as info: connectivity and data-farm notices.
  client.ib.on(EventName.info, (message: string, code: number) => {
    control({ notice: String(code), reqId: '-1', message, ...(lastDataAt ? { lastDataAt } : {}) });
    if (code === 1101 && open) {
      // TWS dropped every subscription: request them all again (new ids, same cached contracts).
      const again = [...subs.values()];
      subs.clear();
      generation++;
      for (const s of again) request({ ...s, pacingRetries: 0 });
    }
  });
  client.ib.on(EventName.error, (err: Error, code: number, reqId: number) => {
    const sub = subs.get(reqId);
    if (reqId < 0 || !sub) {
      if (!open) h.onError(new Error(`TWS at ${client.key}: ${err.message} (${code})`));
      else if (reqId < 0) control({ notice: String(code), reqId: '-1', message: err.message });
      return;
    }
    subs.delete(reqId);
    // A pacing violation is waited out (the spacing, doubled at each repeat), never retried at once.
    const pacing = PACING_CODES.has(code) && /pacing/i.test(err.message);
    const permission = PERMISSION_CODES.has(code);
    const retryInMs = pacing ? Math.min(600_000, Math.max(tws.tickByTickSpacingMs, 1) * 2 ** sub.pacingRetries)
      : permission ? tws.permissionRetryMs : undefined;
    control({ notice: String(code), reqId: String(reqId), symbol: sub.instrument, stream: sub.channel, conId: sub.q.conId,
      message: err.message, ...(retryInMs !== undefined ? { retryInMs } : {}) });
    if (retryInMs !== undefined) later(retryInMs, () => request({ ...sub, pacingRetries: pacing ? sub.pacingRetries + 1 : 0 }));
  });

  const finish = (code: number, reason: string) => {
    if (closed) return;
    closed = true;
    for (const t of timers) clearTimeout(t);
    timers.clear();
    h.onClose(code, reason, {});
    client.ib.removeAllListeners();
  };
  client.ib.on(EventName.disconnected, () => finish(1006, 'TWS closed the connection'));
  client.ib.connect();

  const stop = () => {
    if (closed) return;
    client.close();
    // The library reports the close asynchronously; a connection that never opened may not.
    setTimeout(() => finish(1000, 'closed'), 1000).unref();
  };
  return {
    send: () => { throw new Error('the TWS transport sends requests itself'); },
    ping: () => {
      if (!open || closed) return false;
      client.ib.reqCurrentTime(); // TWS answers CURRENT_TIME: a live socket shows activity
      return true;
    },
    pause: () => { client.setReading(false); },
    resume: () => { client.setReading(true); },
    close: stop,
    terminate: stop,
    get isOpen() { return open && !closed; },
  };
}

interface Notice { notice: string; reqId?: string; symbol?: string; stream?: string; message?: string }

export const ibkr: WsVenue = {
  venue: 'ib',
  channels: IB_CHANNELS,
  venueSymbol: (instrument) => instrument,
  // Quiet instruments send nothing for minutes: the watchdog probes with reqCurrentTime instead.
  maxStaleSeconds: 60,
  validate(feed) {
    if (feed.instruments.length === 0) {
      throw new TickflowError('CONFIG_INVALID', `feeds.${feed.name}.instruments: expected at least one contract, received none`);
    }
  },
  url: (feed) => {
    const t = twsSettings(feed);
    return `tws://${t.host}:${t.port}/?clientId=${t.clientId}`;
  },
  openTransport: (feed, handlers) => openTwsTransport(feed, handlers),
  classify(text, feed): Classified {
    if (text.startsWith('{"stream":"')) return { kind: 'data', stream: text.slice(11, text.indexOf('"', 11)) };
    const n = JSON.parse(text) as Notice; // a control frame this file wrote itself
    const code = Number(n.notice);
    const detail: Record<string, unknown> = { ...n, code: Number.isNaN(code) ? n.notice : code };
    if (MEANING[code]) detail.meaning = MEANING[code];
    if (code === 1100) return { kind: 'error', detail: { ...detail, channels: feed.channels, instruments: feed.instruments } };
    if (code === 1102 || FARM_UP.has(code) || n.notice === 'requested' || n.notice === 'skipped') return { kind: 'ack', detail };
    if (FARM_DOWN.has(code)) return { kind: 'error', detail };
    return { kind: 'error', detail };
  },
};
