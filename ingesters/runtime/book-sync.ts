import { request } from 'undici';
import { receiveTime } from './clock.ts';
import type { FrameGate, SessionContext } from './venue.ts';

/** Update ids of a diff, read from the raw text by the venue file (ids only, never prices). */
export interface DiffIds { first: bigint; last: bigint; prev?: bigint | undefined }

export interface BookSyncSpec {
  /** Stream label of diff frames. */
  diffStream: string;
  /** Stream label the REST snapshot lands under. */
  snapshotStream: string;
  ids(payload: string): DiffIds | undefined;
  snapshotUrl(key: string): string;
  snapshotLastId(payload: string): bigint | undefined;
  /** How long to wait before fetching the snapshot, so diffs are buffered first. */
  snapshotDelayMs?: number;
}

interface Held { payload: string; receivedAt: string; ids: DiffIds }

interface BookKey {
  state: 'buffering' | 'live';
  held: Held[];
  lastId: bigint;
  fetching: boolean;
  /** Applied at least one diff since the snapshot (futures-style prev-id checks apply after it). */
  continued: boolean;
}

/**
 * Keeps a venue order book in step by the documented procedure: buffer diffs, fetch the REST
 * snapshot, land it before the buffered diffs, then require each diff to continue the previous
 * one; on a break, record it and resynchronize with a new snapshot. The SQL side applies the same
 * rule when it builds market.book, so a diff that slipped through is never applied out of order.
 */
export function bookSync(spec: BookSyncSpec, ctx: SessionContext): FrameGate {
  const books = new Map<string, BookKey>();
  let closed = false;

  async function fetchSnapshot(key: string, b: BookKey): Promise<void> {
    if (b.fetching || closed) return;
    b.fetching = true;
    try {
      await new Promise((r) => setTimeout(r, spec.snapshotDelayMs ?? 250));
      for (let attempt = 0; !closed; attempt++) {
        const url = spec.snapshotUrl(key);
        try {
          const res = await request(url, { signal: ctx.signal, headersTimeout: 10_000, bodyTimeout: 10_000 });
          const body = await res.body.text();
          const receivedAt = receiveTime();
          const u = new URL(url);
          ctx.land(spec.snapshotStream, body, receivedAt, { source: 'rest', request: `GET ${u.pathname}${u.search} ${res.statusCode}` });
          const lastId = res.statusCode === 200 ? spec.snapshotLastId(body) : undefined;
          if (lastId === undefined) throw new Error(`snapshot answered ${res.statusCode}`);
          ctx.event('snapshot', { key, lastUpdateId: lastId.toString(), held: b.held.length });
          if (release(key, b, lastId)) return;
          // The snapshot is older than the first buffered diff can continue: fetch a newer one.
          ctx.event('resync', { key, reason: 'snapshot older than buffered diffs', lastUpdateId: lastId.toString() });
          await new Promise((r) => setTimeout(r, Math.min(5_000, 200 * 2 ** attempt)));
        } catch (err) {
          if (closed) return;
          ctx.event('error_frame', { key, reason: `snapshot fetch failed: ${(err as Error).message}` });
          await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * 2 ** attempt)));
        }
      }
    } finally {
      b.fetching = false;
    }
  }

  /** Lands the held diffs after the snapshot; false when none continues it. */
  function release(key: string, b: BookKey, lastId: bigint): boolean {
    const held = b.held;
    const newer = held.filter((h) => h.ids.last > lastId);
    if (newer.length > 0 && newer[0]!.ids.first > lastId + 1n) return false;
    b.held = [];
    b.state = 'live';
    b.lastId = lastId;
    b.continued = false;
    for (const h of held) {
      ctx.land(spec.diffStream, h.payload, h.receivedAt);
      if (h.ids.last > b.lastId) { check(key, b, h.ids); }
    }
    return true;
  }

  function check(key: string, b: BookKey, ids: DiffIds): boolean {
    if (ids.last <= b.lastId) return true; // already covered
    const continues = b.continued && ids.prev !== undefined ? ids.prev === b.lastId : ids.first <= b.lastId + 1n;
    if (!continues) {
      ctx.event('sequence_break', { key, expectedFrom: (b.lastId + 1n).toString(), receivedFirst: ids.first.toString() });
      b.state = 'buffering';
      b.held = [];
      return false;
    }
    b.lastId = ids.last;
    b.continued = true;
    return true;
  }

  return {
    take(stream, key, payload, receivedAt) {
      if (stream !== spec.diffStream || key === undefined) return false;
      const ids = spec.ids(payload);
      if (!ids) return false; // malformed: land it as is, SQL quarantines it
      let b = books.get(key);
      if (!b) { b = { state: 'buffering', held: [], lastId: 0n, fetching: false, continued: false }; books.set(key, b); }
      if (b.state === 'live') {
        if (check(key, b, ids)) return false; // continues the book: land it now
        b.held.push({ payload, receivedAt, ids });
        void fetchSnapshot(key, b);
        return true;
      }
      b.held.push({ payload, receivedAt, ids });
      void fetchSnapshot(key, b);
      return true;
    },
    close() {
      closed = true;
      // Diffs still held when the connection ends are landed anyway: raw data is never dropped.
      for (const b of books.values()) for (const h of b.held.splice(0)) ctx.land(spec.diffStream, h.payload, h.receivedAt);
    },
  };
}
