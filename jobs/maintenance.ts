import type { Task } from 'graphile-worker';
import { z } from 'zod';

const Payload = z.object({}).strict();

/** Creates partitions ahead of time and applies retention (see ops.run_maintenance()). */
const task: Task = async (payload, helpers) => {
  Payload.parse(payload ?? {});
  const { rows } = await helpers.withPgClient((c) => c.query<{ r: unknown }>('select ops.run_maintenance() as r'));
  helpers.logger.info(`maintenance: ${JSON.stringify(rows[0]?.r)}`);
};
export default task;
