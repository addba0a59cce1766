import type { Task } from 'graphile-worker';
import { z } from 'zod';
import { TickflowError } from '../src/errors.ts';

const Payload = z.object({
  /** How many days before now to learn from (four weeks: every hour of the week four times). */
  days: z.number().int().min(1).max(365).default(28),
}).strict();

/**
 * Learns each instrument's usual activity per hour of the week (quality.activity_profiles),
 * which sets how long a silence must be before the gaps detector reports it.
 */
const task: Task = async (payload, helpers) => {
  const parsed = Payload.safeParse(payload ?? {});
  if (!parsed.success) {
    throw new TickflowError('JOB_PAYLOAD_INVALID', `quality_profile: expected {days?: 1..365}, received ${JSON.stringify(payload)} (${parsed.error.message})`);
  }
  const { rows } = await helpers.withPgClient((c) => c.query<{ n: number }>(
    `select quality.refresh_activity_profiles(date_trunc('hour', now()) - $1 * interval '1 day', date_trunc('hour', now())) as n`,
    [parsed.data.days]));
  helpers.logger.info(`quality: activity profiles refreshed (${rows[0]?.n ?? 0} instrument-hours)`);
};
export default task;
