import type { Task } from 'graphile-worker';
import { z } from 'zod';
import { TickflowError } from '../src/errors.ts';

const Payload = z.strictObject({
  venue: z.string().min(1),
  symbol: z.string().regex(/^[A-Z0-9.]+(\/[A-Z0-9.]+)?$/),
  kind: z.enum(['candles', 'trades', 'ticks']),
  timeframe: z.string().regex(/^[1-9][0-9]*(s|m|h|d)$/).optional(),
  from: z.iso.datetime({ offset: true }),
  to: z.iso.datetime({ offset: true }),
});

/** A backfill request through the job queue: plans it (ops.plan_backfill), whose chunks become backfill_chunk jobs. */
const task: Task = async (payload, helpers) => {
  const parsed = Payload.safeParse(payload ?? {});
  if (!parsed.success) {
    throw new TickflowError('JOB_PAYLOAD_INVALID',
      'backfill: expected {venue, symbol: "BTC/USDT", kind: candles|trades|ticks, timeframe?: "1m", from, to: ISO-8601 with offset}, ' +
      `received ${JSON.stringify(payload)} (${parsed.error.message})`);
  }
  const p = parsed.data;
  const { rows } = await helpers.withPgClient((c) => c.query<{ plan_id: string }>(
    'select ops.plan_backfill($1, $2, $3, $4, $5::timestamptz, $6::timestamptz, $7)::text as plan_id',
    [p.venue, p.symbol, p.kind, p.timeframe ?? null, p.from, p.to, 'job']));
  helpers.logger.info(`backfill: plan ${rows[0]?.plan_id} for ${p.venue} ${p.symbol} ${p.kind} ${p.timeframe ?? ''} ${p.from}..${p.to}`);
};
export default task;
