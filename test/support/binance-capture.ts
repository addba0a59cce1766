import path from 'node:path';
import { readCapture, type CapturedLine } from '../fakes/binance.ts';

export const CAPTURE = path.join(import.meta.dirname, '..', 'fixtures', 'binance', 'hftbacktest-spot-btcusdt-20240808-first500.txt');

/** The capture split into stream frames and the REST depth snapshot it contains. */
export function loadSpotCapture(): { frames: CapturedLine[]; snapshot: string } {
  const lines = readCapture(CAPTURE);
  const snap = lines.find((l) => l.text.startsWith('{"lastUpdateId"'));
  if (!snap) throw new Error('capture has no REST snapshot line');
  return { frames: lines.filter((l) => l !== snap), snapshot: snap.text };
}

/** Exact decimal comparison key for fixed-scale decimal strings (no floats). */
export function decimalKey(s: string, scale = 8): bigint {
  const [i, f = ''] = s.split('.');
  return BigInt(i! + f.padEnd(scale, '0').slice(0, scale));
}

/** Applies the documented spot procedure to the capture, independently of tickflow. */
export function expectedBook(frames: CapturedLine[], snapshot: string): { bids: Map<string, string>; asks: Map<string, string>; lastUpdateId: bigint } {
  const snap = JSON.parse(snapshot) as { lastUpdateId: number; bids: [string, string][]; asks: [string, string][] };
  const bids = new Map(snap.bids.filter(([, q]) => decimalKey(q) !== 0n));
  const asks = new Map(snap.asks.filter(([, q]) => decimalKey(q) !== 0n));
  let last = BigInt(snap.lastUpdateId);
  for (const f of frames) {
    const msg = JSON.parse(f.text.replace(/"U":(\d+)/, '"U":"$1"').replace(/"u":(\d+)/, '"u":"$1"')) as
      { stream: string; data: { U: string; u: string; b: [string, string][]; a: [string, string][] } };
    if (!msg.stream.includes('@depth')) continue;
    const U = BigInt(msg.data.U); const u = BigInt(msg.data.u);
    if (u <= last) continue;
    if (U > last + 1n) throw new Error(`capture breaks at U=${U}`);
    for (const [p, q] of msg.data.b) { if (decimalKey(q) === 0n) bids.delete(p); else bids.set(p, q); }
    for (const [p, q] of msg.data.a) { if (decimalKey(q) === 0n) asks.delete(p); else asks.set(p, q); }
    last = u;
  }
  return { bids, asks, lastUpdateId: last };
}
