import type { Sql } from './db.ts';

export interface FeedStatus {
  feed: string;
  venue: string;
  connected: boolean;
  state: string;
  messages_per_second: number;
  last_message_age_s: number | null;
  open_gaps: number;
  quarantined: number;
}

/** Per feed: connected, messages per second over the last minute, last message age, gaps, quarantine. */
export async function feedStatus(sql: Sql): Promise<FeedStatus[]> {
  return sql<FeedStatus[]>`select * from ops.feed_status order by feed`;
}

export function formatStatus(rows: FeedStatus[]): string {
  if (rows.length === 0) return 'no feeds have connected yet';
  const head = ['feed', 'venue', 'state', 'msg/s (1m)', 'last msg', 'open gaps', 'quarantined'];
  const body = rows.map((r) => [
    r.feed, r.venue, r.state, Number(r.messages_per_second).toFixed(1),
    r.last_message_age_s === null ? '-' : `${Number(r.last_message_age_s).toFixed(1)} s ago`,
    String(r.open_gaps), String(r.quarantined),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [line(head), ...body.map(line)].join('\n');
}
