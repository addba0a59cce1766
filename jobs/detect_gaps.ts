import type { Task } from 'graphile-worker';
import { z } from 'zod';
import { TickflowError } from '../src/errors.ts';

const Payload = z.strictObject({}).default({});

/**
 * Every minute: records holes in the trade id sequence that arrived since the last run
 * (quality.scan_recent_trade_gaps) and holes between the stored candles of backfill chunks that
 * finished since then (quality.scan_recent_candle_gaps), queues the recovery of gaps that have
 * none yet, frees the jobs of processes that died mid-job, and queues backfill chunks planned
 * before a worker ran.
 */
const task: Task = async (payload, helpers) => {
  const parsed = Payload.safeParse(payload ?? {});
  if (!parsed.success) {
    throw new TickflowError('JOB_PAYLOAD_INVALID', `detect_gaps: expected {}, received ${JSON.stringify(payload)}`);
  }
  const { rows } = await helpers.withPgClient((c) => c.query<{ released: number; found: number; candles: number; queued: number; chunks: number }>(
    `select ops.release_orphaned_jobs() as released, quality.scan_recent_trade_gaps() as found,
            quality.scan_recent_candle_gaps() as candles, quality.enqueue_pending_gaps() as queued,
            ops.enqueue_pending_backfills() as chunks`));
  const r = rows[0];
  if (r && r.released + r.found + r.candles + r.queued + r.chunks > 0) {
    helpers.logger.info(`detect_gaps: ${r.found} new trade gaps, ${r.candles} new candle gaps, ${r.queued} recoveries queued, `
      + `${r.released} orphaned jobs released, ${r.chunks} chunks queued`);
  }
};
export default task;
