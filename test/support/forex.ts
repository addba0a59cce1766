import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig, type Config, type FeedConfig } from '../../src/config.ts';
import type { Sql } from '../../src/db.ts';
import { Lander } from '../../ingesters/runtime/lander.ts';
import { WsFeed, type RuntimeOptions } from '../../ingesters/runtime/connection.ts';
import { oanda } from '../../ingesters/oanda.ts';
import { polygon } from '../../ingesters/polygon.ts';
import { quietLog } from './feeds.ts';

export const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures');
export const fixture = (rel: string): string => readFileSync(path.join(FIXTURES, rel), 'utf8');
export const fixtureLines = (rel: string): string[] => fixture(rel).split('\n').filter(Boolean);

/** The real OANDA pricing-stream lines (captured by others, see test/fixtures/oanda/SOURCES.md), file by file. */
export const OANDA_STREAM_FILES = [
  'oanda/oandapyV20-pricing-stream-EUR_USD-EUR_JPY-2016-10-27.jsonl',
  'oanda/go-oanda-streaming-api-README-pricing-stream-USD_JPY-2016-12-20.jsonl',
  'oanda/async_v20-pricing-stream-line-EUR_USD-2017-09-21.jsonl',
];
export const capturedOandaLines = (): string[] => OANDA_STREAM_FILES.flatMap(fixtureLines);

/** The price object of a real REST pricing snapshot taken on a weekend: tradeable false. */
export function nonTradeablePrice(): string {
  const body = JSON.parse(fixture('oanda/oanda-julia-README-pricing-snapshot-EUR_USD-nontradeable-2019-01-20.json')) as { prices: unknown[] };
  return JSON.stringify(body.prices[0]); // same key order and values: one ClientPrice, as a stream line carries it
}

/** The documented Polygon examples (not captures), by path (/forex/C ...) or kind. */
export function polygonDocExamples(): Array<{ path?: string; kind?: string; payload: Record<string, unknown> }> {
  return fixtureLines('polygon/docs-examples.jsonl').map((l) => JSON.parse(l) as { path?: string; kind?: string; payload: Record<string, unknown> });
}
export function polygonDocExample(pathOrKind: string): Record<string, unknown> {
  const e = polygonDocExamples().find((x) => x.path === pathOrKind || x.kind === pathOrKind);
  if (!e) throw new Error(`no documented example ${pathOrKind}`);
  return e.payload;
}

// ---------- exact decimals ----------

/** A decimal string as integer units of 10^-scale. */
export function units(text: string, scale: number): bigint {
  const [i, f = ''] = text.split('.');
  if (f.length > scale) throw new Error(`${text} has more than ${scale} decimals`);
  return BigInt(i! + f.padEnd(scale, '0'));
}
/** Integer units of 10^-scale as the shortest decimal text (what trim_scale() prints). */
export function decimal(u: bigint, scale: number): string {
  const neg = u < 0n;
  const digits = (neg ? -u : u).toString().padStart(scale + 1, '0');
  const frac = digits.slice(digits.length - scale).replace(/0+$/, '');
  const int = digits.slice(0, digits.length - scale);
  return `${neg ? '-' : ''}${int}${frac ? `.${frac}` : ''}`;
}

// ---------- a derived EUR/USD timeline (captured line shapes, generated times and prices) ----------

/** The captured 2017 EUR_USD stream line: the template of the derived OANDA lines. */
export const OANDA_TEMPLATE = fixtureLines('oanda/async_v20-pricing-stream-line-EUR_USD-2017-09-21.jsonl')[0]!;

export interface Tick { ms: number; micros: number; nanos: number; bid: string; ask: string; tradeable: boolean }

/** RFC 3339 with nanoseconds from ms + the 3 microsecond and 3 nanosecond digits. */
export function nanoTime(t: Pick<Tick, 'ms' | 'micros' | 'nanos'>): string {
  return new Date(t.ms).toISOString().replace(/Z$/, `${String(t.micros).padStart(3, '0')}${String(t.nanos).padStart(3, '0')}Z`);
}

export function oandaLine(t: Tick): string {
  let line = OANDA_TEMPLATE
    .replace(/"time":"[^"]+"/, `"time":"${nanoTime(t)}"`)
    .replace(/"bids":\[\{"price":"[^"]+"/, `"bids":[{"price":"${t.bid}"`)
    .replace(/"asks":\[\{"price":"[^"]+"/, `"asks":[{"price":"${t.ask}"`);
  if (!t.tradeable) line = line.replace('"status":"tradeable","tradeable":true', '"status":"non-tradeable","tradeable":false');
  return line;
}

/** A forex quote event in the documented shape ({"ev":"C","p","x","a","b","t"}), prices as JSON numbers. */
export function polygonQuote(pair: string, ms: number, bid: string, ask: string): string {
  return `{"ev":"C","p":"${pair}","x":"44","a":${ask},"b":${bid},"t":${ms}}`;
}

/** A deterministic price walk in units of 1e-5 around 1.18730. */
export function walk(seed: number): () => bigint {
  let a = seed;
  let price = 118730n;
  return () => {
    a = (a * 1103515245 + 12345) % 2147483648;
    price += BigInt((a % 7) - 3);
    return price;
  };
}

// ---------- feeds ----------

export const OANDA_TOKEN = 'oanda-test-token-4f9a1c';
export const POLYGON_KEY = 'polygon-test-key-7d2e0b';

/** A config as tickflow builds it: secrets from the environment (registered for redaction), feeds validated. */
export function forexConfig(feeds: unknown[]): Config {
  return loadConfig({ env: { OANDA_TOKEN, POLYGON_API_KEY: POLYGON_KEY }, overrides: { feeds } });
}

export function oandaFeedConfig(streamUrl: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'oanda-test', venue: 'oanda', channels: ['pricing'], instruments: ['EUR/USD'], account: '101-004-1234567-001',
    urls: { stream: streamUrl, rest: streamUrl }, ...over };
}

export function polygonFeedConfig(wsUrl: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'polygon-forex', venue: 'polygon', channels: ['forex:C', 'forex:CA'], instruments: ['EUR/USD'],
    urls: { ws: wsUrl }, ...over };
}

export interface RunningFeed { lander: Lander; feed: WsFeed; stop(): Promise<void> }

export function startFeed(url: string, config: Config, feed: FeedConfig, runtime: Partial<RuntimeOptions> = {},
                          lander?: Lander): RunningFeed {
  const own = lander === undefined;
  const l = lander ?? new Lander(url, { maxBatchFrames: 2000, flushIntervalMs: 10, maxBufferedBytes: 32 << 20 }, quietLog);
  const venue = feed.venue === 'oanda' ? oanda : polygon;
  const f = new WsFeed(venue, feed, l, quietLog, { backoffBaseMs: 50, backoffCapMs: 500, secrets: config.secrets, ...runtime });
  f.start();
  return { lander: l, feed: f, async stop() { await f.stop(); if (own) await l.close(); } };
}

// ---------- landing REST pages and other frames directly (what the backfill engine will do) ----------

export interface RawFrame { venue: string; stream: string; source: string; request: string | null; payload: string; receivedAt: string }

/** Lands frames as one batch the way the landing writer does, then normalizes it. */
export async function landAndNormalize(sql: Sql, frames: RawFrame[]): Promise<{ batchId: string; counts: Record<string, number> }> {
  const batchId = randomUUID();
  const times = frames.map((f) => f.receivedAt).sort();
  await sql`insert into ops.batches (batch_id, frames, first_received_at, last_received_at)
            values (${batchId}, ${frames.length}, ${times[0] ?? null}, ${times.at(-1) ?? null})`;
  for (const [i, f] of frames.entries()) {
    await sql`insert into staging.frames (batch_id, venue, stream, session_id, seq, received_at, source, request, payload)
              values (${batchId}, ${f.venue}, ${f.stream}, ${null}, ${i + 1}, ${f.receivedAt}, ${f.source}, ${f.request}, ${f.payload})`;
  }
  const [row] = await sql<{ counts: Record<string, number> }[]>`select staging.normalize_batch(${batchId}) as counts`;
  return { batchId, counts: row!.counts };
}
