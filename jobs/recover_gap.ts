import type { Task } from 'graphile-worker';
import { z } from 'zod';
import { TickflowError } from '../src/errors.ts';
import { errorText, historyVenue, withHistoryJob } from '../src/history.ts';
import { recoverGap, type GapRow } from '../ingesters/runtime/history.ts';
import { RestDeferred, RestRefused } from '../ingesters/runtime/rest.ts';

const Payload = z.strictObject({ gapId: z.number().int().positive() });

/**
 * Recovers one gap of the ledger (quality.gaps) from the venue's REST history; queued by the gap
 * itself when both its ends are known. Trades come back by id until none of the range is
 * missing; a stream the venue keeps no history of ends unrecoverable. The last failed attempt
 * marks the gap unrecoverable with its error.
 */
const task: Task = async (payload, helpers) => {
  const parsed = Payload.safeParse(payload ?? {});
  if (!parsed.success) {
    throw new TickflowError('JOB_PAYLOAD_INVALID',
      `recover_gap: expected {gapId: positive integer}, received ${JSON.stringify(payload)} (${parsed.error.message})`);
  }
  const { gapId } = parsed.data;
  const jobKey = `recover_gap:${gapId}`;
  await withHistoryJob(helpers, jobKey, async (job) => {
    const [gap] = await job.sql<GapRow[]>`
      select gap_id::text, venue, stream, symbol, instrument_id, from_ms::text, to_ms::text, from_seq::text, to_seq::text,
             timeframe
      from quality.begin_gap_recovery(${gapId})`;
    if (!gap) return; // ended already
    try {
      const venue = historyVenue(gap.venue);
      if (!venue) throw new RestRefused(`${gap.venue} has no REST history tickflow can fetch`);
      const { ctx, landing } = await job.context(venue);
      const result = await recoverGap(ctx, landing, gap);
      job.log.info({ gapId, ...result, requests: ctx.client.requests }, 'gap recovery finished');
    } catch (err) {
      if (err instanceof RestDeferred) {
        await job.sql`select quality.note_gap_error(${gapId}, ${errorText(err)})`;
        await helpers.addJob('recover_gap', { gapId }, { jobKey, runAt: err.runAt, maxAttempts: helpers.job.max_attempts });
        return;
      }
      const final = err instanceof RestRefused || helpers.job.attempts >= helpers.job.max_attempts;
      if (final) await job.sql`select quality.end_gap(${gapId}, 'unrecoverable', ${errorText(err)})`;
      else await job.sql`select quality.note_gap_error(${gapId}, ${errorText(err)})`;
      if (err instanceof RestRefused) return;
      throw err;
    }
  });
};
export default task;
