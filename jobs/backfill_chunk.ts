import type { Task } from 'graphile-worker';
import { z } from 'zod';
import { TickflowError } from '../src/errors.ts';
import { errorText, historyVenue, withHistoryJob } from '../src/history.ts';
import { backfillChunk, type ChunkRow } from '../ingesters/runtime/history.ts';
import { RestDeferred, RestRefused } from '../ingesters/runtime/rest.ts';

const Payload = z.strictObject({ chunkId: z.number().int().positive() });

/**
 * One chunk of a backfill plan (ops.backfill_chunks; planned by ops.plan_backfill). Fetches the
 * venue's REST pages within its budget, lands them in staging (SQL normalizes them) and records
 * progress; a chunk already done is skipped. A refused request fails the chunk at once; other
 * failures are retried by graphile-worker until the last attempt, which marks the chunk failed
 * with its error (ops.backfill_progress, tickflow status). The rest of the plan carries on.
 */
const task: Task = async (payload, helpers) => {
  const parsed = Payload.safeParse(payload ?? {});
  if (!parsed.success) {
    throw new TickflowError('JOB_PAYLOAD_INVALID',
      `backfill_chunk: expected {chunkId: positive integer}, received ${JSON.stringify(payload)} (${parsed.error.message})`);
  }
  const { chunkId } = parsed.data;
  const jobKey = `backfill_chunk:${chunkId}`;
  await withHistoryJob(helpers, jobKey, async (job) => {
    const [chunk] = await job.sql<ChunkRow[]>`
      select chunk_id::text, venue, symbol, kind, timeframe,
             floor(extract(epoch from chunk_from) * 1000)::bigint::text as from_ms,
             floor(extract(epoch from chunk_to) * 1000)::bigint::text as to_ms,
             floor(extract(epoch from fetched_to) * 1000)::bigint::text as fetched_to_ms
      from ops.backfill_chunk_start(${chunkId})`;
    if (!chunk) return; // done by an earlier run
    try {
      const venue = historyVenue(chunk.venue);
      if (!venue) throw new RestRefused(`no REST history for venue ${chunk.venue}`);
      const { ctx, landing } = await job.context(venue);
      const state = await backfillChunk(ctx, landing, chunk);
      job.log.info({ chunkId, state, requests: ctx.client.requests }, 'backfill chunk finished');
    } catch (err) {
      if (err instanceof RestDeferred) {
        await job.sql`select ops.backfill_chunk_fail(${chunkId}, ${errorText(err)}, false)`;
        await helpers.addJob('backfill_chunk', { chunkId }, { jobKey, runAt: err.runAt, maxAttempts: helpers.job.max_attempts });
        return;
      }
      const final = err instanceof RestRefused || helpers.job.attempts >= helpers.job.max_attempts;
      await job.sql`select ops.backfill_chunk_fail(${chunkId}, ${errorText(err)}, ${final})`;
      if (err instanceof RestRefused) return; // retrying cannot help
      throw err;
    }
  });
};
export default task;
