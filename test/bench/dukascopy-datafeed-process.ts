// The local Dukascopy datafeed of the benchmark in its own process (its CPU is not the measured
// pipeline's): captured .bi5 hours and synthetic hours re-encoded from them (test/fakes/dukascopy.ts),
// empty files for closed hours. stdout: "READY <base url>", then "REQUESTS <n>" on each "count" line of stdin.
import { createInterface } from 'node:readline';
import { FakeDukascopy } from '../fakes/dukascopy.ts';

const fake = new FakeDukascopy({ synthetic: ['EURUSD'] });
await fake.start();
console.log(`READY ${fake.baseUrl}`);
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === 'count') console.log(`REQUESTS ${fake.requests.length}`);
});
process.on('SIGTERM', () => { void fake.stop().then(() => process.exit(0)); });
