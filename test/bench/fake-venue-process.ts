// Runs a fake Binance in its own process, so the benchmark's CPU figures are the ingester's.
import { FakeBinance } from '../fakes/binance.ts';
import { binanceShapedStream } from './binance-stream.ts';

const [count, rate] = process.argv.slice(2).map(Number);
const fake = new FakeBinance({ frames: () => binanceShapedStream(count!), ratePerSecond: rate || undefined });
const url = await fake.start();
console.log(`READY ${url} ${fake.restUrl}`);
process.on('SIGTERM', () => { void fake.stop().then(() => process.exit(0)); });
