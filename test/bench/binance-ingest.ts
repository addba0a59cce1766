import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { connect } from '../../src/db.ts';
import { Lander, type BatchResult } from '../../ingesters/runtime/lander.ts';
import { WsFeed } from '../../ingesters/runtime/connection.ts';
import { binance } from '../../ingesters/binance.ts';
import { createLogger } from '../../src/log.ts';

const log = createLogger({ level: 'warn' });

export interface IngestFigures {
  messages: number;
  seconds: number;
  messagesPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  cpuMicrosPerMessage: number;
  peakRssMb: number;
  /** The slowest receive-to-commit time of the warm-up (not in p50/p99). */
  warmupMaxMs: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/**
 * Replays a Binance-shaped stream from a fake venue in another process into the real ingester
 * (WsFeed + landing writer, normalization inline) and measures what it sustains. rate = 0 sends
 * as fast as possible (throughput); a rate paces the venue (latency at that load).
 */
export async function ingestBench(url: string, opts: { messages: number; rate: number; batchFrames: number; flushMs: number;
                                                       /** Frames accepted this long after the first are the warm-up: reported apart. */
                                                       warmupMs?: number }): Promise<IngestFigures> {
  const sql = connect(url, { max: 2 });
  await sql`truncate staging.frames, market.trades, market.quotes, ops.batches, ops.sessions, ops.session_events, market.bar_invalidations`;
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'fake-venue-process.ts'),
    String(opts.messages), String(opts.rate)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = await new Promise<string[]>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => { if (l.startsWith('READY ')) resolve(l.split(' ').slice(1)); });
    child.on('exit', (code) => reject(new Error(`fake venue exited ${code}`)));
  });
  const lander = new Lander(url, { maxBatchFrames: opts.batchFrames, flushIntervalMs: opts.flushMs, maxBufferedBytes: 64 << 20,
    trackAcceptTimes: true }, log);
  const latencies: number[] = [];
  let warmupMax = 0;
  let normalized = 0;
  let firstAt = 0;
  let lastAt = 0;
  lander.onBatch((r: BatchResult) => {
    if (!r.acceptedAt || r.frames === 0) return;
    if (!firstAt) firstAt = r.acceptedAt[0]!;
    lastAt = r.committedAt;
    normalized += Number(r.counts?.trades ?? 0) + Number(r.counts?.quotes ?? 0);
    for (const a of r.acceptedAt) {
      // The first seconds of a new writer connection plan its statements: a start-up cost, reported apart.
      if (a - firstAt < (opts.warmupMs ?? 0)) warmupMax = Math.max(warmupMax, r.committedAt - a);
      else latencies.push(r.committedAt - a);
    }
    if (process.env.BENCH_DEBUG) console.log(`batch ${r.frames} frames in ${r.ms.toFixed(1)} ms`);
  });
  let peakRss = 0;
  const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss); }, 50);
  const cpu0 = process.cpuUsage();
  const feed = new WsFeed(binance, {
    name: 'bench', venue: 'binance', enabled: true, channels: ['trade', 'bookTicker'], instruments: ['BTC/USDT'],
    urls: { ws: ready[0]!, rest: ready[1]! }, staleAfterSeconds: 30,
  }, lander, log);
  feed.start();
  const deadline = performance.now() + 600_000;
  while (lander.landedFrames < opts.messages && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await feed.stop();
  await lander.close();
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);
  child.kill('SIGTERM');
  const [check] = await sql`select count(*)::int as n from staging.frames`;
  await sql.end();
  if (check!.n < opts.messages || normalized < opts.messages) {
    throw new Error(`benchmark lost data: ${check!.n} landed, ${normalized} normalized of ${opts.messages}`);
  }
  latencies.sort((a, b) => a - b);
  const seconds = (lastAt - firstAt) / 1000;
  return {
    messages: opts.messages,
    seconds: Number(seconds.toFixed(2)),
    messagesPerSecond: Math.round(opts.messages / seconds),
    latencyP50Ms: Number(percentile(latencies, 50).toFixed(1)),
    latencyP99Ms: Number(percentile(latencies, 99).toFixed(1)),
    cpuMicrosPerMessage: Number(((cpu.user + cpu.system) / opts.messages).toFixed(1)),
    peakRssMb: Math.round(peakRss / 1048576),
    warmupMaxMs: Number(warmupMax.toFixed(1)),
  };
}
