// The fake Binance history venue in its own process (its CPU is not the measured pipeline's).
// stdout: "READY <ws url> <rest url>"; stdin commands: "tape" starts the live trade tape,
// "outage <ms>" cuts the stream for ms and answers "OUTAGE_END <epoch ms>" when it is over.
import { createInterface } from 'node:readline';
import { FakeBinanceHistory } from '../fakes/binance-history.ts';

const fake = new FakeBinanceHistory({ weightLimit: 1_000_000_000, symbols: ['BTCUSDT'], tradesPerSecond: 50 });
const urls = await fake.start();
console.log(`READY ${urls.ws} ${urls.rest}`);
createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, arg] = line.trim().split(' ');
  if (cmd === 'tape') fake.startTape();
  if (cmd === 'outage') {
    const ms = Number(arg);
    fake.outage(ms);
    setTimeout(() => console.log(`OUTAGE_END ${fake.outageUntil}`), ms);
  }
});
process.on('SIGTERM', () => { void fake.stop().then(() => process.exit(0)); });
