/**
 * Receive times with microseconds. The wall clock is read once and advanced by the monotonic
 * clock, so a wall-clock jump never reorders frames or breaks timers; it is re-anchored to the
 * wall clock (never backwards) when a second has passed since the last check, so long runs do
 * not drift and a forward step of the wall clock (NTP) shows in receive times within a second.
 * A backward step does not: receive times go on from the monotonic clock until the wall clock
 * catches up, because receive order must stay total.
 */
const REANCHOR_CHECK_MS = 1_000;
let anchorWallUs = BigInt(Date.now()) * 1000n;
let anchorMono = process.hrtime.bigint();
let lastUs = anchorWallUs;
let lastAnchorCheck = performance.now();

export function nowMicros(): bigint {
  const mono = process.hrtime.bigint();
  let us = anchorWallUs + (mono - anchorMono) / 1000n;
  if (performance.now() - lastAnchorCheck > REANCHOR_CHECK_MS) {
    lastAnchorCheck = performance.now();
    const wall = BigInt(Date.now()) * 1000n;
    if (wall > us) { anchorWallUs = wall; anchorMono = mono; us = wall; }
  }
  if (us <= lastUs) us = lastUs + 1n; // strictly increasing: receive order is total
  lastUs = us;
  return us;
}

/** ISO-8601 UTC with microseconds, for our own receive timestamps. */
export function isoMicros(us: bigint): string {
  const ms = us / 1000n;
  const iso = new Date(Number(ms)).toISOString(); // 2024-08-08T23:54:13.937Z
  const micro = (us % 1000n).toString().padStart(3, '0');
  return `${iso.slice(0, 23)}${micro}Z`;
}

export function receiveTime(): string {
  return isoMicros(nowMicros());
}

/** Monotonic milliseconds, for watchdogs, backoff and batching. */
export const monotonicMs = (): number => performance.now();
