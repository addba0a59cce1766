import pino, { type Logger } from 'pino';
import { redact } from './redact.ts';

export type { Logger };

/**
 * JSON logs on stdout. Every line passes through redact(), so a secret that slips into
 * a message, an error or a URL is masked before it is written.
 */
export function createLogger(opts: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const level = opts.level ?? process.env.TICKFLOW_LOG_LEVEL ?? 'info';
  const out = opts.destination ?? process.stdout;
  const stream = { write: (line: string) => out.write(redact(line)) };
  return pino({
    level,
    base: { app: 'tickflow' },
    redact: { paths: ['*.token', '*.apiKey', '*.password', 'headers.authorization', '*.headers.authorization'], censor: '[redacted]' },
  }, stream);
}
