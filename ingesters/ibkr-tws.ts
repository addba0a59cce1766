import { EventName, IBApi, type Contract, type ContractDetails } from '@stoqey/ib';
import type { FeedConfig } from '../src/config.ts';

// Interactive Brokers through TWS or IB Gateway: the API socket is driven by @stoqey/ib (the
// handshake, framing, request encoding). What lands in staging is taken from the wire: the
// library hands every received message to the `received` event as its text fields, before it
// decodes them into numbers, so prices, sizes and times keep the venue's own text (SQL reads
// them). Shared by the live feed (ibkr.ts) and the history fetcher (ibkr-history.ts).

export interface TwsSettings {
  host: string;
  port: number;
  clientId: number;
  historyClientId: number;
  tickByTickSpacingMs: number;
  permissionRetryMs: number;
}

export function twsSettings(feed: FeedConfig | undefined): TwsSettings {
  const t = feed?.tws;
  const clientId = t?.clientId ?? 17;
  return { host: t?.host ?? '127.0.0.1', port: t?.port ?? 4001, clientId, historyClientId: t?.historyClientId ?? clientId + 1,
    tickByTickSpacingMs: t?.tickByTickSpacingMs ?? 15_000, permissionRetryMs: (t?.permissionRetrySeconds ?? 600) * 1000 };
}

/** The contract a canonical instrument names: EUR/USD is IDEALPRO cash, anything else a SMART-routed US stock. */
export function contractSpec(instrument: string): Contract {
  const [base, quote] = instrument.split('/');
  if (quote) return { symbol: base, secType: 'CASH' as Contract['secType'], currency: quote, exchange: 'IDEALPRO' };
  return { symbol: instrument, secType: 'STK' as Contract['secType'], currency: 'USD', exchange: 'SMART' };
}

/** A contract as TWS qualified it (reqContractDetails), with the canonical instrument it stands for. */
export interface QualifiedContract {
  instrument: string;
  conId: string;
  secType: string;
  /** What requests name: the conId and the exchange TWS answered with. */
  contract: Contract;
}

/** A request TWS answered with an error message (4) for its request id. */
export class TwsRequestError extends Error {
  constructor(readonly code: number, message: string) {
    super(`TWS error ${code}: ${message}`);
    this.name = 'TwsRequestError';
  }
}

/** Contracts qualified once per Gateway for the life of the process (reconnects reuse them). */
const qualified = new Map<string, QualifiedContract>();

/** Error codes that say the connection to TWS itself is unusable. */
const CONNECT_FAIL = 502;

/**
 * One API connection to TWS: connect (resolved at the next valid id, which is when TWS takes
 * requests), request ids, contract qualification (cached), and the raw fields of every
 * received message for listeners.
 */
export class TwsClient {
  readonly ib: IBApi;
  private nextId = 1;
  private readonly details = new Map<number, { rows: ContractDetails[]; done: (err?: Error) => void }>();
  private wire: Array<(fields: string[]) => void> = [];
  ready = false;

  constructor(readonly settings: { host: string; port: number; clientId: number }) {
    // 40 messages a second: under TWS's limit of 50, past which it disconnects the client.
    this.ib = new IBApi({ host: settings.host, port: settings.port, clientId: settings.clientId, maxReqPerSec: 40 });
    this.ib.on(EventName.received, (fields: string[]) => { for (const l of this.wire) l(fields); });
    this.ib.on(EventName.contractDetails, (reqId: number, d: ContractDetails) => { this.details.get(reqId)?.rows.push(d); });
    this.ib.on(EventName.contractDetailsEnd, (reqId: number) => { this.details.get(reqId)?.done(); });
    this.ib.on(EventName.error, (err: Error, code: number, reqId: number) => {
      this.details.get(reqId)?.done(new TwsRequestError(code, err.message));
    });
    this.ib.on(EventName.disconnected, () => {
      this.closed = true;
      for (const d of [...this.details.values()]) d.done(new Error(`TWS at ${this.key} closed the connection`));
    });
  }

  private closed = false;

  /** Connected, API started, and not closed since. */
  get alive(): boolean { return this.ready && !this.closed; }

  /** Listens to the text fields of every message TWS sends (message id first); returns the unsubscribe. */
  onWire(listener: (fields: string[]) => void): () => void {
    this.wire.push(listener);
    return () => { this.wire = this.wire.filter((l) => l !== listener); };
  }

  reqId(): number { return this.nextId++; }

  get key(): string { return `${this.settings.host}:${this.settings.port}`; }

  /** Connects; resolves once TWS sent the next valid id, rejects if the socket closes or fails first. */
  connect(timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { cleanup(); reject(new Error(`TWS at ${this.key} did not start the API within ${timeoutMs} ms`)); }, timeoutMs);
      const onReady = () => { cleanup(); this.ready = true; resolve(); };
      const onClosed = () => { cleanup(); reject(new Error(`TWS at ${this.key} closed the connection during the handshake`)); };
      const onError = (err: Error, code: number) => {
        if (code === CONNECT_FAIL || code === 326) { cleanup(); reject(new TwsRequestError(code, err.message)); }
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.ib.off(EventName.nextValidId, onReady);
        this.ib.off(EventName.disconnected, onClosed);
        this.ib.off(EventName.error, onError);
      };
      this.ib.on(EventName.nextValidId, onReady);
      this.ib.on(EventName.disconnected, onClosed);
      this.ib.on(EventName.error, onError);
      this.ib.connect();
    });
  }

  /** The contract of a canonical instrument, asked of TWS once per Gateway and process. */
  async qualify(instrument: string, timeoutMs = 10_000): Promise<QualifiedContract> {
    const cacheKey = `${this.key}|${instrument}`;
    const hit = qualified.get(cacheKey);
    if (hit) return hit;
    const reqId = this.reqId();
    const spec = contractSpec(instrument);
    const rows = await new Promise<ContractDetails[]>((resolve, reject) => {
      const entry = { rows: [] as ContractDetails[], done: (err?: Error) => {
        clearTimeout(timer);
        this.details.delete(reqId);
        if (err) reject(err); else resolve(entry.rows);
      } };
      const timer = setTimeout(() => entry.done(new Error(`no contract details for ${instrument} within ${timeoutMs} ms`)), timeoutMs);
      this.details.set(reqId, entry);
      this.ib.reqContractDetails(reqId, spec);
    });
    const c = rows[0]?.contract;
    if (!c || c.conId === undefined) throw new TwsRequestError(200, `no security definition for ${instrument}`);
    const q: QualifiedContract = {
      instrument, conId: String(c.conId), secType: String(c.secType ?? spec.secType),
      contract: { conId: c.conId, exchange: c.exchange ?? spec.exchange, symbol: c.symbol, secType: c.secType, currency: c.currency },
    };
    qualified.set(cacheKey, q);
    return q;
  }

  /**
   * Stops (or resumes) reading from the socket, so a full landing buffer holds TWS back through
   * TCP instead of growing. The library does not expose its socket; where its internals differ
   * from the version this was written for, this does nothing (and says so by returning false).
   */
  setReading(on: boolean): boolean {
    const socket = (this.ib as unknown as { controller?: { socket?: { client?: { pause(): void; resume(): void } } } })
      .controller?.socket?.client;
    if (!socket || typeof socket.pause !== 'function') return false;
    if (on) socket.resume(); else socket.pause();
    return true;
  }

  close(): void {
    this.ib.disconnect();
  }
}

/** Forgets qualified contracts (tests that restart a Gateway with other contracts). */
export function forgetContracts(): void { qualified.clear(); }
