import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/**
 * A local TWS / IB Gateway speaking the TWS API socket protocol (the "V100+" framing), written
 * from the protocol: the client opens with "API\0", a 4-byte big-endian length and its version
 * range ("v100..193"); the server answers with one length-framed message holding its server
 * version and connection time; the client sends START_API (71); the server sends the managed
 * accounts (15), the next valid order id (9) and the data-farm notices (error messages, 4, with
 * id -1). After that every message either way is a 4-byte big-endian length followed by
 * NUL-terminated text fields. It serves contract details (10, 52), tick-by-tick data (99),
 * 5-second real-time bars (50) and historical bars (17), answers errors (4) where a real Gateway
 * does, and enforces IBKR's historical-data pacing itself, counting violations (162).
 */

/** The server version the fake announces: the layout the captured messages have (no lastTradeDate field, size rules). */
export const FAKE_SERVER_VERSION = 176;

export interface FakeContract {
  /** What the request names: symbol, secType, currency. */
  symbol: string;
  secType: string;
  currency: string;
  /** The CONTRACT_DATA (10) message the fake answers with; its second field (the request id) is replaced. */
  details: string[];
  conId: string;
}

export interface Subscription {
  /** 97 tick-by-tick, 50 real-time bars. */
  msgId: 97 | 50;
  reqId: string;
  conId: string;
  /** Tick type (AllLast, BidAsk, Last) or what to show (TRADES, MIDPOINT). */
  what: string;
  client: number;
}

export interface HistoryRequest {
  reqId: string;
  conId: string;
  endDateTime: string;
  barSize: string;
  duration: string;
  useRth: string;
  whatToShow: string;
  formatDate: string;
  at: number;
}

export interface PacingRules {
  /** Identical requests (same contract, end, duration, bar size, what to show) closer than this are a violation. */
  identicalMs: number;
  perContract: { max: number; windowMs: number };
  total: { max: number; windowMs: number };
}

export const IBKR_PACING: PacingRules = {
  identicalMs: 15_000, perContract: { max: 6, windowMs: 2_000 }, total: { max: 60, windowMs: 600_000 },
};

export interface FakeTwsOptions {
  contracts: FakeContract[];
  /** Called once a subscription is taken: the test (or a script) sends its data with tws.data(). */
  onSubscribe?: (sub: Subscription, tws: FakeTws) => void;
  /**
   * The answer to a historical request: bars as rows of [date, open, high, low, close, volume,
   * wap, barCount] (wire text) with the start and end TWS reports, an error (code, message), or
   * 'drop' (the Gateway closes the connection instead of answering).
   */
  history?: (req: HistoryRequest) => { start: string; end: string; bars: string[][] } | { error: [number, string] } | 'drop';
  pacing?: PacingRules;
  /** Contracts (conIds) whose market data the account is not permissioned for (error 10089). */
  denied?: string[];
  /** Contracts (conIds) whose first real-time bars request is refused as a pacing violation (420). */
  pacedOnce?: string[];

}

const frame = (fields: string[]): Buffer => {
  const body = Buffer.from(fields.map((f) => `${f}\0`).join(''), 'utf8');
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
};

/** A wire message stored with its NUL separators written as the four characters \x00. */
export const escapedFields = (text: string): string[] => text.trim().split('\\x00').slice(0, -1);

/** The captured handshake messages a real Gateway sends after START_API (test/fixtures/ib). */
const captured = (name: string): string[] =>
  escapedFields(readFileSync(path.join(import.meta.dirname, '..', 'fixtures', 'ib', name), 'utf8'));
const MANAGED_ACCOUNTS = captured('nautilus-tws-wire-managed_accounts.escaped.txt');
const NEXT_VALID_ID = captured('nautilus-tws-wire-next_valid_id.escaped.txt');
/** A wire message stored with its NUL separators shown as '|'. */
export const pipeFields = (text: string): string[] => text.split('|').slice(0, -1);

interface Client { id: number; socket: net.Socket; buf: Buffer; greeted: boolean; started: boolean; clientId: string }

export class FakeTws {
  readonly server: net.Server;
  port = 0;
  /** Every message clients sent after the greeting, in order, with its arrival time (ms, monotonic). */
  requests: Array<{ client: number; fields: string[]; at: number }> = [];
  /** Connections accepted. */
  connections = 0;
  readonly subscriptions = new Map<string, Subscription>();
  readonly history: HistoryRequest[] = [];
  /** Historical requests answered with a pacing violation (162), and why. */
  readonly violations: string[] = [];
  /** Answer the next historical request with a pacing violation whatever the rules say (another client used the budget). */
  paceNextHistory = false;
  private clients = new Map<number, Client>();
  private pacedOnce = new Set<string>();
  private readonly pacing: PacingRules;

  constructor(private readonly opts: FakeTwsOptions) {
    this.pacing = opts.pacing ?? IBKR_PACING;
    this.server = net.createServer((socket) => this.accept(socket));
  }

  async start(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }

  async stop(): Promise<void> {
    for (const c of this.clients.values()) c.socket.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  get openClients(): number { return this.clients.size; }

  /** Requests of a message id (97 tick-by-tick, 50 real-time bars, 9 contract details, 20 history ...). */
  sent(msgId: number): string[][] { return this.requests.filter((r) => r.fields[0] === String(msgId)).map((r) => r.fields); }

  /** Sends a message to every started client. */
  broadcast(fields: string[]): void {
    for (const c of this.clients.values()) if (c.started) c.socket.write(frame(fields));
  }

  /** A notice or error for no request (id -1): connectivity (1100, 1101, 1102) and data farms (2103-2106). */
  notice(code: number, text: string): void {
    this.broadcast(['4', '2', '-1', String(code), text, '']);
  }

  /** Sends a data message of a subscription: the fields after the message id and request id. */
  data(sub: Subscription, fields: string[]): void {
    const c = this.clients.get(sub.client);
    if (!c) return;
    c.socket.write(frame(sub.msgId === 97 ? ['99', sub.reqId, ...fields] : ['50', '3', sub.reqId, ...fields]));
  }

  /** Closes every client connection (a Gateway restart). */
  dropClients(): void {
    for (const c of this.clients.values()) c.socket.destroy();
  }

  private accept(socket: net.Socket): void {
    const c: Client = { id: ++this.connections, socket, buf: Buffer.alloc(0), greeted: false, started: false, clientId: '' };
    this.clients.set(c.id, c);
    socket.on('data', (d) => this.onData(c, d));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.clients.delete(c.id);
      for (const [k, s] of this.subscriptions) if (s.client === c.id) this.subscriptions.delete(k);
    });
  }

  private onData(c: Client, data: Buffer): void {
    c.buf = Buffer.concat([c.buf, data]);
    if (!c.greeted) {
      if (c.buf.length < 8) return;
      if (c.buf.subarray(0, 4).toString('latin1') !== 'API\0') { c.socket.destroy(); return; }
      const len = c.buf.readUInt32BE(4);
      if (c.buf.length < 8 + len) return;
      const range = c.buf.subarray(8, 8 + len).toString('utf8');
      c.buf = c.buf.subarray(8 + len);
      const m = /^v(\d+)(?:\.\.(\d+))?$/.exec(range);
      if (!m || Number(m[2] ?? m[1]) < FAKE_SERVER_VERSION || Number(m[1]) > FAKE_SERVER_VERSION) { c.socket.destroy(); return; }
      c.greeted = true;
      c.socket.write(frame([String(FAKE_SERVER_VERSION), '20231204 12:00:00 EST']));
    }
    while (c.buf.length >= 4) {
      const len = c.buf.readUInt32BE(0);
      if (c.buf.length < 4 + len) return;
      const fields = c.buf.subarray(4, 4 + len).toString('utf8').split('\0').slice(0, -1);
      c.buf = c.buf.subarray(4 + len);
      this.onMessage(c, fields);
    }
  }

  private onMessage(c: Client, f: string[]): void {
    const at = performance.now();
    this.requests.push({ client: c.id, fields: f, at });
    const write = (fields: string[]) => c.socket.write(frame(fields));
    const error = (reqId: string, code: number, text: string) => write(['4', '2', reqId, String(code), text, '']);
    switch (f[0]) {
      case '71': { // START_API: version, client id, optional capabilities
        c.clientId = f[2] ?? '';
        if ([...this.clients.values()].some((o) => o !== c && o.started && o.clientId === c.clientId)) {
          error('-1', 326, `Unable to connect as the client id is already in use. Retry with a unique client id.`);
          c.socket.end();
          return;
        }
        c.started = true;
        write(MANAGED_ACCOUNTS);
        write(NEXT_VALID_ID);
        write(['4', '2', '-1', '2104', 'Market data farm connection is OK:usfarm', '']);
        write(['4', '2', '-1', '2106', 'HMDS data farm connection is OK:ushmds', '']);
        write(['4', '2', '-1', '2158', 'Sec-def data farm connection is OK:secdefnj', '']);
        return;
      }
      case '9': { // REQ_CONTRACT_DATA: version, reqId, conId, symbol, secType, ..., exchange(10), primaryExch, currency(12)
        const reqId = f[2]!;
        const k = this.opts.contracts.find((x) => x.symbol === f[4] && x.secType === f[5] && x.currency === f[12]);
        if (!k) { error(reqId, 200, 'No security definition has been found for the request'); return; }
        write([k.details[0]!, reqId, ...k.details.slice(2)]);
        write(['52', '1', reqId]);
        return;
      }
      case '97': // REQ_TICK_BY_TICK_DATA: reqId, conId, symbol, secType, ..., tickType(14)
      case '50': { // REQ_REAL_TIME_BARS: version, reqId, conId, ..., barSize(15), whatToShow(16)
        const tbt = f[0] === '97';
        const reqId = tbt ? f[1]! : f[2]!;
        const conId = tbt ? f[2]! : f[3]!;
        if (this.opts.denied?.includes(conId)) {
          error(reqId, 10089, 'Requested market data requires additional subscription for API. See link in \'Market Data Connections\' dialog for more details.');
          return;
        }
        if (!tbt && this.opts.pacedOnce?.includes(conId) && !this.pacedOnce.has(conId)) {
          this.pacedOnce.add(conId);
          error(reqId, 420, 'Invalid Real-time Query:Historical data request pacing violation');
          return;
        }
        const sub: Subscription = { msgId: tbt ? 97 : 50, reqId, conId, what: tbt ? f[14]! : f[16]!, client: c.id };
        this.subscriptions.set(`${c.id}:${reqId}`, sub);
        this.opts.onSubscribe?.(sub, this);
        return;
      }
      case '49': write(['49', '1', String(Math.floor(Date.now() / 1000))]); return; // REQ_CURRENT_TIME: the liveness probe
      case '98': this.subscriptions.delete(`${c.id}:${f[1]}`); return; // CANCEL_TICK_BY_TICK_DATA
      case '51': this.subscriptions.delete(`${c.id}:${f[2]}`); return; // CANCEL_REAL_TIME_BARS
      case '20': { // REQ_HISTORICAL_DATA (server >= 124): reqId, conId, ..., includeExpired(14), end, barSize, duration, useRTH, whatToShow, formatDate
        const req: HistoryRequest = { reqId: f[1]!, conId: f[2]!, endDateTime: f[15]!, barSize: f[16]!, duration: f[17]!,
          useRth: f[18]!, whatToShow: f[19]!, formatDate: f[20]!, at };
        const violation = this.paced(req);
        this.history.push(req);
        if (violation || this.paceNextHistory) {
          if (violation) this.violations.push(violation);
          this.paceNextHistory = false;
          error(req.reqId, 162, 'Historical Market Data Service error message:Pacing violation');
          return;
        }
        const answer = this.opts.history?.(req) ?? { error: [162, 'Historical Market Data Service error message:HMDS query returned no data'] };
        if (answer === 'drop') { c.socket.destroy(); return; }
        if ('error' in answer) { error(req.reqId, answer.error[0], answer.error[1]); return; }
        write(['17', req.reqId, answer.start, answer.end, String(answer.bars.length), ...answer.bars.flat()]);
        return;
      }
      default:
        return;
    }
  }

  /** IBKR's historical pacing, checked against the requests before this one; the reason when violated. */
  private paced(req: HistoryRequest): string | undefined {
    const p = this.pacing;
    const same = (h: HistoryRequest) => h.conId === req.conId && h.endDateTime === req.endDateTime && h.duration === req.duration
      && h.barSize === req.barSize && h.whatToShow === req.whatToShow;
    const identical = this.history.find((h) => same(h) && req.at - h.at < p.identicalMs);
    if (identical) return `identical request ${Math.round(req.at - identical.at)} ms after the first`;
    const perContract = this.history.filter((h) => h.conId === req.conId && req.at - h.at < p.perContract.windowMs).length;
    if (perContract >= p.perContract.max) return `${perContract + 1} requests for contract ${req.conId} within ${p.perContract.windowMs} ms`;
    const total = this.history.filter((h) => req.at - h.at < p.total.windowMs).length;
    if (total >= p.total.max) return `${total + 1} requests within ${p.total.windowMs} ms`;
    return undefined;
  }
}
