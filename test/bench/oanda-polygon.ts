/**
 * OANDA and Polygon through the real ingester, on the embedded Postgres (fsync on), in a temp folder:
 *
 *   npx tsx test/bench/oanda-polygon.ts [oandaLines=100000] [polygonFrames=30000]
 *
 *  - OANDA: price lines of the pricing stream (HTTP chunked, newline-delimited; derived from the
 *    captured EUR_USD line, four instruments) sent as fast as the connection takes them, through
 *    the HTTP-stream transport and the landing writer with inline normalization (quotes and their
 *    mid-bar invalidations): lines per second from the first line accepted to the last batch
 *    committed, all normalized.
 *  - Polygon: WebSocket frames of one to three crypto XQ events (the real capture, re-timed)
 *    through the handshake, transport and landing writer: frames and events per second.
 *
 * The fake venues run in another process. Prints one JSON line:
 *   {oandaLines, oandaSeconds, oandaLinesPerSec, polygonFrames, polygonEvents, polygonSeconds,
 *    polygonFramesPerSec, polygonEventsPerSec}
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { connect, startEmbedded } from '../../src/db.ts';
import { createLogger } from '../../src/log.ts';
import { migrate } from '../../src/migrate.ts';
import { Lander, type BatchResult } from '../../ingesters/runtime/lander.ts';
import { WsFeed } from '../../ingesters/runtime/connection.ts';
import { oanda } from '../../ingesters/oanda.ts';
import { polygon } from '../../ingesters/polygon.ts';
import { OANDA_TOKEN, POLYGON_KEY } from '../support/forex.ts';
import { freePort } from '../support/global-setup.ts';
import type { FeedConfig } from '../../src/config.ts';

const OANDA_LINES = Math.max(1000, Number.parseInt(process.argv[2] ?? '100000', 10) || 100_000);
const POLYGON_FRAMES = Math.max(1000, Number.parseInt(process.argv[3] ?? '30000', 10) || 30_000);
const POLYGON_EVENTS = Array.from({ length: POLYGON_FRAMES }, (_, f) => 1 + (f % 3)).reduce((a, b) => a + b, 0);
const log = createLogger({ level: 'warn' });

async function run(url: string, feed: FeedConfig, venue: typeof oanda, expected: number, countKey: string, expectNormalized: number) {
  const lander = new Lander(url, { maxBatchFrames: 5000, flushIntervalMs: 20, maxBufferedBytes: 64 << 20, trackAcceptTimes: true }, log);
  let firstAt = 0;
  let lastAt = 0;
  let normalized = 0;
  lander.onBatch((r: BatchResult) => {
    if (!r.acceptedAt || r.frames === 0) return;
    if (!firstAt) firstAt = r.acceptedAt[0]!;
    lastAt = r.committedAt;
    normalized += Number(r.counts?.[countKey] ?? 0);
  });
  const f = new WsFeed(venue, feed, lander, log, { secrets: { OANDA_TOKEN, POLYGON_API_KEY: POLYGON_KEY } });
  f.start();
  const deadline = performance.now() + 300_000;
  while (lander.landedFrames < expected && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await f.stop();
  await lander.close();
  if (lander.landedFrames < expected || normalized < expectNormalized) {
    throw new Error(`${feed.venue}: ${lander.landedFrames} of ${expected} frames landed, ${normalized} of ${expectNormalized} ${countKey} normalized`);
  }
  return (lastAt - firstAt) / 1000;
}

const dir = mkdtempSync(path.join(tmpdir(), 'tickflow-bench-forex-'));
const db = await startEmbedded({ dir: path.join(dir, 'pg'), port: await freePort(), fsync: true, log });
const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'forex-venues-process.ts'),
  String(OANDA_LINES), String(POLYGON_FRAMES)], { stdio: ['ignore', 'pipe', 'inherit'] });
try {
  const sql = connect(db.url, { max: 2 });
  await migrate(sql, db.url, log);
  await sql`select ops.ensure_all_partitions('2024-03-01', now() + interval '2 days')`;
  await sql.end();
  const [oandaUrl, polygonUrl] = await new Promise<string[]>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => { if (l.startsWith('READY ')) resolve(l.split(' ').slice(1)); });
    child.on('exit', (code) => reject(new Error(`fake venues exited ${code}`)));
  });
  const base = { enabled: true, staleAfterSeconds: 30 } as const;
  const oandaSeconds = await run(db.url, { ...base, name: 'bench-oanda', venue: 'oanda', channels: ['pricing'],
    instruments: ['EUR/USD', 'GBP/USD', 'AUD/USD', 'USD/CAD'], account: '101-004-1234567-001', urls: { stream: oandaUrl! } },
  oanda, OANDA_LINES, 'quotes', OANDA_LINES);
  const polygonSeconds = await run(db.url, { ...base, name: 'bench-polygon', venue: 'polygon', channels: ['crypto:XQ'],
    instruments: ['BTC/USD'], urls: { ws: polygonUrl! } }, polygon, POLYGON_FRAMES, 'quotes', POLYGON_EVENTS);
  console.log(JSON.stringify({
    oandaLines: OANDA_LINES, oandaSeconds: Number(oandaSeconds.toFixed(2)), oandaLinesPerSec: Math.round(OANDA_LINES / oandaSeconds),
    polygonFrames: POLYGON_FRAMES, polygonEvents: POLYGON_EVENTS, polygonSeconds: Number(polygonSeconds.toFixed(2)),
    polygonFramesPerSec: Math.round(POLYGON_FRAMES / polygonSeconds), polygonEventsPerSec: Math.round(POLYGON_EVENTS / polygonSeconds),
  }));
} finally {
  child.kill('SIGTERM');
  await db.stop();
  rmSync(dir, { recursive: true, force: true });
}
