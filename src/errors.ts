/**
 * Few, coded errors. Every error tickflow raises on purpose carries a stable code
 * (documented in README.md, checked by test/errors.test.ts) and a message that says
 * what was expected and what was received.
 */
export const ERROR_CODES = {
  CONFIG_INVALID: 'the configuration file or environment does not match the schema',
  CONFIG_SECRET_IN_FILE: 'a secret (token, key, password) was found in the configuration file',
  DB_UNAVAILABLE: 'Postgres could not be reached or started',
  DATA_DIR_LOCKED: 'another process owns the local data folder',
  MIGRATION_FAILED: 'a migration or sql/ definition failed to apply',
  FEED_PROTOCOL: 'a venue sent something its protocol does not allow at this point',
  FEED_SNAPSHOT: 'a REST order-book snapshot could not be fetched or did not line up',
  LANDING_CLOSED: 'a frame was offered to a landing writer that is closing',
  CLICKHOUSE_UNAVAILABLE: 'ClickHouse could not be reached or its data folder could not be opened',
  CLICKHOUSE_SYNC: 'the ClickHouse sync could not ship a batch (a value ClickHouse cannot hold exactly, or a failed insert)',
  EXPORT_INVALID: 'an export request names an unknown table or format, or ClickHouse could not write it',
  JOB_PAYLOAD_INVALID: 'a job payload does not match its schema',
  VENUE_FILE_CORRUPT: 'a venue data file (a Dukascopy .bi5) is truncated, damaged or not of the kind its path names; nothing was decoded',
  VENUE_REST: 'a venue REST history request was refused, or kept failing after its retries (the answer is quarantined with the reason)',
  BACKFILL_INVALID: 'a backfill request names an unknown venue, instrument form, kind or timeframe, or a range that ends before it starts',
  QUALITY_REPORT_INVALID: 'a quality report or detection names no known instrument, or a range that is not from < to',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class TickflowError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TickflowError';
    this.code = code;
  }
}

export function isTickflowError(err: unknown, code?: ErrorCode): err is TickflowError {
  return err instanceof TickflowError && (code === undefined || err.code === code);
}
