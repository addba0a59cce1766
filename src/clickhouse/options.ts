import { z } from 'zod';
import type { Config } from '../config.ts';
import { TickflowError } from '../errors.ts';

/**
 * The `clickhouse` section of the configuration, in a module of its own (no ClickHouse client,
 * no native engine) so that src/config.ts can embed it: `clickhouse: clickhouseConfigSchema.prefault({})`.
 * clickhouseOptions() parses whatever the config object carries under that key (defaults when
 * absent), so callers pass the whole Config either way.
 */
export const clickhouseConfigSchema = z.strictObject({
  /** Off: no ClickHouse at all (no folder, no sync, no migrations). */
  enabled: z.boolean().default(true),
  /** Database holding tickflow's tables, created by `tickflow migrate` (a database in CLICKHOUSE_URL wins). */
  database: z.string().regex(/^[a-z_][a-z0-9_]*$/, 'a lowercase identifier').default('tickflow'),
  /** Days of trades and quotes kept in ClickHouse; bars are kept forever. */
  ticksTtlDays: z.number().int().min(1).max(36_500).default(90),
  sync: z.strictObject({
    /** Pause between sync rounds inside `tickflow start`; a round ships until caught up. */
    intervalMs: z.number().int().min(10).max(3_600_000).default(250),
    /** Rows per ClickHouse insert. */
    batchRows: z.number().int().min(1).max(1_000_000).default(100_000),
  }).default({ intervalMs: 250, batchRows: 100_000 }),
});

export type ClickHouseOptions = Readonly<z.infer<typeof clickhouseConfigSchema>>;

export function clickhouseOptions(config: Config, overrides?: unknown): ClickHouseOptions {
  const raw = overrides ?? (config as { clickhouse?: unknown }).clickhouse ?? {};
  const parsed = clickhouseConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `clickhouse.${i.path.join('.')}: ${i.message}`);
    throw new TickflowError('CONFIG_INVALID', `invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return Object.freeze({ ...parsed.data, sync: Object.freeze(parsed.data.sync) });
}

