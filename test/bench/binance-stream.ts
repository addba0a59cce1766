import { loadSpotCapture } from '../support/binance-capture.ts';

/**
 * A Binance-shaped stream of any length: the captured trade and bookTicker frames, cycled, with
 * trade ids and update ids advanced each cycle so that nothing deduplicates away.
 */
export function* binanceShapedStream(count: number, symbol = 'btcusdt'): Generator<string> {
  const { frames } = loadSpotCapture();
  const base = frames.map((f) => f.text).filter((t) => t.includes('@trade') || t.includes('@bookTicker'))
    .map((t) => t.replaceAll('btcusdt', symbol).replaceAll('BTCUSDT', symbol.toUpperCase()));
  let tradeId = 1_000_000_000;
  let updateId = 90_000_000_000;
  for (let n = 0; n < count; n++) {
    const t = base[n % base.length]!;
    yield t.includes('@trade')
      ? t.replace(/"t":\d+/, `"t":${++tradeId}`)
      : t.replace(/"u":\d+/, `"u":${++updateId}`);
  }
}
