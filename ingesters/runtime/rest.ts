import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, buildConnector, request, type Dispatcher } from 'undici';
import type { Sql } from '../../src/db.ts';
import type { Logger } from '../../src/log.ts';
import { TickflowError } from '../../src/errors.ts';
import { redact } from '../../src/redact.ts';
import { rateLimitWait, rateLimitWaits } from '../../src/metrics.ts';
import { receiveTime } from './clock.ts';
import { reserveConnectionSlot } from './limiter.ts';
import type { Secrets } from './venue.ts';

/** One REST request of a venue's history API, as a venue file describes it. */
export interface RestPage {
  /** Stream label the answer lands under in staging.frames. */
  stream: string;
  path: string;
  /** Query parameters in the order they are sent. */
  query: ReadonlyArray<readonly [string, string]>;
  /** What the request costs in the venue's weight budget. */
  weight: number;
  /** How the answer lands (staging.frames.source): 'rest' unless the venue serves files. */
  source?: 'rest' | 'file';
}

/** How a venue answered, classified by the venue file. */
export type AnswerKind = 'ok' | 'throttled' | 'banned' | 'retry' | 'refused';

/** The REST side of a venue: budgets, how to read its answers, and how to page its history. */
export interface RestVenue {
  venue: string;
  defaultBaseUrl: string;
  /** The budget created when the database has none for this venue (ops.rate_limits). */
  defaultLimits: ReadonlyArray<{ name: string; unit: 'weight' | 'requests'; windowSeconds: number; max: number }>;
  /** The response header carrying the venue's own count of used weight, and the limit it counts. */
  usedHeader?: { header: string; limit: string };
  /** Request headers from config.secrets (credentials go here, never in the query: the request is recorded in staging). */
  headers?(secrets: Secrets): Record<string, string>;
  /** The venue's limit on new connections per second (connections are kept alive and paced per process). */
  maxNewConnectionsPerSecond?: number;
  /** The REST host that goes with a feed's other URLs (a live stream host: the live REST host), for feeds that name none. */
  restUrlFor?(urls: { ws?: string | undefined; stream?: string | undefined }): string | undefined;
  classify(status: number): AnswerKind;
  /** A 200 body that was cut short (or is not what the endpoint returns) is retried. */
  complete(page: RestPage, body: string): boolean;
  /**
   * Binary answers (files): the 200 body's bytes decoded into the staging payload, keeping the
   * venue's own values and units. With a problem (a damaged or truncated file) the payload is
   * landed for SQL to quarantine with the reason, and the file is fetched again. columns: the
   * records as binary COPY fields, landed beside the payload (Frame.columns).
   */
  decode?(page: RestPage, body: Uint8Array): Decoded | Promise<Decoded>;
}

/** A binary answer decoded (RestVenue.decode). */
export interface Decoded {
  payload: string;
  problem?: string;
  columns?: Buffer;
}

export interface RestAnswer {
  page: RestPage;
  status: number;
  body: string;
  receivedAt: string;
  /** method, path with query, status (no secrets): the request column of staging.frames. */
  request: string;
  /** A decoded file's records as binary COPY fields (see RestVenue.decode). */
  columns?: Buffer;
}

export interface RestOptions {
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  /** Attempts per page for network errors, timeouts, cut bodies and 5xx (429/418 waits are not attempts). */
  attempts: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  /** A wait for the budget longer than this is not slept in the job: the job is deferred instead. */
  maxInlineWaitMs: number;
}

export const DEFAULT_REST: RestOptions = {
  headersTimeoutMs: 15_000,
  bodyTimeoutMs: 30_000,
  attempts: 5,
  backoffBaseMs: 250,
  backoffCapMs: 8_000,
  maxInlineWaitMs: 60_000,
};

/** A request that retrying cannot help (the venue refused it, or it asks for what the venue does not have). */
export class RestRefused extends TickflowError {
  constructor(message: string) { super('VENUE_REST', message); }
}

/** The venue asked us to stay away longer than a job should sleep (a ban): run again at runAt. */
export class RestDeferred extends Error {
  constructor(readonly runAt: Date, readonly waitMs: number) {
    super(`venue budget exhausted or venue banned us: waiting ${Math.round(waitMs / 1000)} s`);
    this.name = 'RestDeferred';
  }
}

function pathWithQuery(page: RestPage): string {
  const q = page.query.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return q ? `${page.path}?${q}` : page.path;
}

/** Retry-After as seconds (the venues here send seconds; an HTTP date is honoured too). */
function retryAfterSeconds(value: string | string[] | undefined): number | null {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return null;
  if (/^\d+(\.\d+)?$/.test(v.trim())) return Number(v.trim());
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, (at - Date.now()) / 1000);
}

/**
 * One keep-alive agent per venue and process whose new connections wait for the venue's pace
 * (the slots are shared with its live feeds). Connections open one at a time, the next one a
 * full interval after the previous one actually opened, so a timer that fired late cannot bunch
 * two of them together.
 */
const agents = new Map<string, Agent>();
function pacedAgent(venue: string, perSecond: number): Agent {
  let agent = agents.get(venue);
  if (!agent) {
    const connect = buildConnector({});
    let turn: Promise<void> = Promise.resolve();
    agent = new Agent({
      connect: (options, callback) => {
        turn = turn.then(async () => {
          await sleep(reserveConnectionSlot(venue, perSecond));
          try {
            connect(options, callback);
          } catch (err) {
            callback(err as Error, null); // the queue goes on for the next connection
          }
          await sleep(1000 / perSecond);
        });
      },
    });
    agents.set(venue, agent);
  }
  return agent;
}

/**
 * GETs of a venue's REST history within the venue's budget held in Postgres (ops.rate_take),
 * shared by every worker process: each request first takes its weight, the venue's own count of
 * used weight is fed back, a 429 pauses everyone until Retry-After and a 418 until the ban ends
 * (ops.rate_report). Network errors, timeouts, cut bodies and 5xx are retried with capped,
 * jittered backoff; any other 4xx is final. Every answer that is not a usable page is handed to
 * onBad (the caller lands it, so the venue's reason is quarantined and kept).
 */
export class RestClient {
  private seen: { limit: string; used: number; at: string } | undefined;
  private readonly headers: Record<string, string>;
  private readonly dispatcher: Dispatcher | undefined;
  requests = 0;
  weight = 0;

  constructor(
    private readonly sql: Sql,
    private readonly venue: RestVenue,
    private readonly baseUrl: string,
    private readonly log: Logger,
    private readonly opts: RestOptions = DEFAULT_REST,
    secrets: Secrets = {},
  ) {
    this.headers = { accept: 'application/json', ...venue.headers?.(secrets) };
    this.dispatcher = venue.maxNewConnectionsPerSecond ? pacedAgent(venue.venue, venue.maxNewConnectionsPerSecond) : undefined;
  }

  /** Creates the venue's default budget when the database has none. */
  static async ensureBudget(sql: Sql, venue: RestVenue): Promise<void> {
    const [row] = await sql<{ n: number }[]>`select count(*)::int as n from ops.rate_limits where venue = ${venue.venue}`;
    if ((row?.n ?? 0) > 0) return;
    for (const l of venue.defaultLimits) {
      await sql`select ops.set_rate_limit(${venue.venue}, ${l.name}, ${l.unit}, ${`${l.windowSeconds} seconds`}::interval, ${l.max})`;
    }
  }

  private async take(weight: number, signal: AbortSignal): Promise<void> {
    for (;;) {
      signal.throwIfAborted();
      const seen = this.seen;
      this.seen = undefined;
      const [row] = await this.sql<{ wait: number }[]>`
        select ops.rate_take(${this.venue.venue}, ${weight}, ${seen?.limit ?? null}, ${seen?.used ?? null},
                             ${seen?.at ?? null}) as wait`;
      const wait = row?.wait ?? 0;
      if (wait === 0) return;
      rateLimitWaits.inc({ venue: this.venue.venue });
      rateLimitWait.inc({ venue: this.venue.venue }, wait / 1000);
      if (wait > this.opts.maxInlineWaitMs) throw new RestDeferred(new Date(Date.now() + wait), wait);
      await sleep(wait, undefined, { signal });
    }
  }

  private backoff(attempt: number): number {
    const ceiling = Math.min(this.opts.backoffCapMs, this.opts.backoffBaseMs * 2 ** attempt);
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  async get(page: RestPage, signal: AbortSignal, onBad: (answer: RestAnswer, why: string) => void): Promise<RestAnswer> {
    const target = pathWithQuery(page);
    const url = `${this.baseUrl.replace(/\/$/, '')}${target}`;
    let failures = 0;
    let lastError = '';
    for (let round = 0; round < this.opts.attempts + 50; round++) {
      if (failures >= this.opts.attempts) break;
      await this.take(page.weight, signal);
      this.requests++;
      this.weight += page.weight;
      let status: number;
      let body: string;
      let headers: Record<string, string | string[] | undefined>;
      let undecodable: string | undefined;
      let columns: Buffer | undefined;
      try {
        const res = await request(url, {
          method: 'GET', signal, headersTimeout: this.opts.headersTimeoutMs, bodyTimeout: this.opts.bodyTimeoutMs,
          headers: this.headers, ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}),
        });
        status = res.statusCode;
        headers = res.headers;
        if (this.venue.decode) {
          const bytes = new Uint8Array(await res.body.arrayBuffer());
          const decoded = this.venue.classify(status) === 'ok' ? await this.venue.decode(page, bytes) : undefined;
          body = decoded ? decoded.payload : Buffer.from(bytes).toString('utf8');
          undecodable = decoded?.problem;
          columns = decoded?.columns;
        } else {
          body = await res.body.text();
        }
      } catch (err) {
        if (signal.aborted) throw err;
        failures++;
        lastError = `GET ${target}: ${redact((err as Error).message)}`;
        this.log.debug({ err: lastError, failures }, 'REST request failed; retrying');
        await sleep(this.backoff(failures), undefined, { signal });
        continue;
      }
      const receivedAt = receiveTime();
      const answer: RestAnswer = { page, status, body, receivedAt, request: `GET ${target} ${status}`, ...(columns ? { columns } : {}) };
      const usedHeader = this.venue.usedHeader;
      const usedText = usedHeader ? headers[usedHeader.header] : undefined;
      const used = typeof usedText === 'string' && /^\d+$/.test(usedText) ? Number(usedText) : null;
      if (used !== null && usedHeader) this.seen = { limit: usedHeader.limit, used, at: receivedAt };
      const kind = this.venue.classify(status);
      if (kind === 'ok' && undecodable === undefined && this.venue.complete(page, body)) return answer;
      if (kind === 'throttled' || kind === 'banned') {
        // Everyone waits: the pause or ban is in Postgres, and the next take() honours it.
        await this.sql`select ops.rate_report(${this.venue.venue}, ${status}, ${usedHeader?.limit ?? null}, ${used},
                                              ${retryAfterSeconds(headers['retry-after'])})`;
        onBad(answer, `HTTP ${status}`);
        this.log.warn({ venue: this.venue.venue, status, retryAfter: headers['retry-after'] }, 'venue throttled us');
        continue;
      }
      if (kind === 'refused') {
        onBad(answer, `HTTP ${status}`);
        throw new RestRefused(`GET ${target}: the venue refused the request with HTTP ${status}: ${redact(body.slice(0, 200))}`);
      }
      failures++;
      lastError = kind === 'ok' ? `GET ${target}: ${undecodable ?? `the body was cut short (${body.length} bytes)`}`
        : `GET ${target}: HTTP ${status}: ${redact(body.slice(0, 200))}`;
      onBad(answer, lastError);
      await sleep(this.backoff(failures), undefined, { signal });
    }
    throw new TickflowError('VENUE_REST', `${lastError || `GET ${target}: no usable answer`} (after ${failures} attempts)`);
  }
}
