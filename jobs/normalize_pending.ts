import type { Task } from 'graphile-worker';
import { z } from 'zod';

const Payload = z.object({ limit: z.number().int().positive().max(10_000).default(500) }).strict();

/** Normalizes batches whose inline normalization failed or was deferred. */
const task: Task = async (payload, helpers) => {
  const { limit } = Payload.parse(payload ?? {});
  const { rows } = await helpers.withPgClient((c) => c.query<{ n: number }>('select staging.normalize_pending($1) as n', [limit]));
  if ((rows[0]?.n ?? 0) > 0) helpers.logger.info(`normalized ${rows[0]!.n} pending batches`);
};
export default task;
