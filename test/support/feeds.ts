import { createLogger } from '../../src/log.ts';
import type { FeedConfig } from '../../src/config.ts';
import { Lander } from '../../ingesters/runtime/lander.ts';
import { WsFeed, type RuntimeOptions } from '../../ingesters/runtime/connection.ts';
import { binance } from '../../ingesters/binance.ts';

export const quietLog = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export function binanceFeed(wsUrl: string, restUrl: string, over: Partial<FeedConfig> = {}): FeedConfig {
  return {
    name: 'binance-test', venue: 'binance', enabled: true,
    channels: ['trade', 'bookTicker', 'depth'], instruments: ['BTC/USDT'],
    urls: { ws: wsUrl, rest: restUrl }, staleAfterSeconds: 15, ...over,
  };
}

export function startBinance(url: string, feed: FeedConfig, runtime: Partial<RuntimeOptions> = {}) {
  const lander = new Lander(url, { maxBatchFrames: 2000, flushIntervalMs: 10, maxBufferedBytes: 32 << 20 }, quietLog);
  const ws = new WsFeed(binance, feed, lander, quietLog, { backoffBaseMs: 50, backoffCapMs: 500, ...runtime });
  ws.start();
  return {
    lander, ws,
    async stop() { await ws.stop(); await lander.close(); },
  };
}
