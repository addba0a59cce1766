// The fake OANDA and Polygon venues of test/bench/oanda-polygon.ts, in a process of their own so
// that producing the stream does not compete with the ingester for its event loop.
//   args: <oanda lines> <polygon frames>; prints "READY <oanda http url> <polygon ws url>".
import { FakeOanda } from '../fakes/oanda.ts';
import { FakePolygon } from '../fakes/polygon.ts';
import { OANDA_TOKEN, POLYGON_KEY, fixtureLines, oandaLine, walk } from '../support/forex.ts';

const OANDA_LINES = Number(process.argv[2] ?? 100_000);
const POLYGON_FRAMES = Number(process.argv[3] ?? 30_000);
const INSTRUMENTS = ['EUR_USD', 'GBP_USD', 'AUD_USD', 'USD_CAD'];
const START = Date.parse('2024-03-04T08:00:00Z');

/** Derived from the captured 2017 EUR_USD line: four instruments, a price every 250 ms each. */
function* oandaLines(): Generator<string> {
  const w = walk(3);
  for (let i = 0; i < OANDA_LINES; i++) {
    const bid = w();
    const fmt = (u: bigint) => `${u / 100000n}.${(u % 100000n).toString().padStart(5, '0')}`;
    yield oandaLine({ ms: START + Math.floor(i / INSTRUMENTS.length) * 250, micros: i % 1000, nanos: 417, bid: fmt(bid), ask: fmt(bid + 14n), tradeable: true })
      .replace('"instrument":"EUR_USD"', `"instrument":"${INSTRUMENTS[i % INSTRUMENTS.length]}"`);
  }
}

/** The real crypto XQ capture's events, re-timed so every quote is new, one to three per frame. */
function* polygonFrames(): Generator<string> {
  const events = fixtureLines('polygon/arbitragegainer-crypto-XQ-quotes-2023-07-26-part1.jsonl').map((l) => l.slice(1, -1));
  let t = START;
  let e = 0;
  for (let f = 0; f < POLYGON_FRAMES; f++) {
    const n = 1 + (f % 3);
    const parts: string[] = [];
    for (let k = 0; k < n; k++, e++) parts.push(events[e % events.length]!.replace(/"t":\d+/, `"t":${t++}`));
    yield `[${parts.join(',')}]`;
  }
}

const oanda = new FakeOanda({ token: OANDA_TOKEN, lines: (n) => (n === 1 ? oandaLines() : []), heartbeatMs: 5000 });
const polygon = new FakePolygon({ apiKey: POLYGON_KEY, frames: (_c, n) => (n === 1 ? polygonFrames() : []) });
const oandaUrl = await oanda.start();
const polygonUrl = await polygon.start();
console.log(`READY ${oandaUrl} ${polygonUrl}`);
process.on('SIGTERM', () => { void Promise.all([oanda.stop(), polygon.stop()]).then(() => process.exit(0)); });
