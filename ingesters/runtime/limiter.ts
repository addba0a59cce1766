import { monotonicMs } from './clock.ts';

/**
 * New-connection pacing shared by every feed of a process that names the same key (a venue
 * that limits how many connections a client may open per second). reserve() books the next
 * free slot and says how long to wait for it, so callers never busy-wait and a burst of
 * reconnects is spread out instead of refused by the venue.
 */
const nextSlot = new Map<string, number>();

export function reserveConnectionSlot(key: string, perSecond: number): number {
  const now = monotonicMs();
  const slot = Math.max(now, nextSlot.get(key) ?? 0);
  nextSlot.set(key, slot + 1000 / perSecond);
  return slot - now;
}
