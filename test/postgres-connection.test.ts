import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../src/db.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { FaultProxy } from './support/faults/proxy.ts';
import { waitFor } from './support/wait.ts';

/**
 * The Postgres client (postgres.js, patched by bin/patch-dependencies.js) when the server ends a
 * connection just as it opens: the server's ReadyForQuery, its FATAL and its close reach the client
 * in one read, as on a loaded machine when Postgres shuts down or is killed. Every new connection
 * first fetches the server's array types with a query nothing awaits; before the patch that
 * query's CONNECTION_CLOSED was an unhandled rejection, which ends a Node process. And a
 * reserved connection (the ClickHouse sync holds one for its advisory lock) that the server ends
 * while it is reserved, then released.
 */

let db: TestDatabase;
let proxy: FaultProxy;

beforeAll(async () => {
  db = await createTestDatabase('pgconn');
  proxy = new FaultProxy({ targetPort: Number(new URL(db.url).port) });
  await proxy.start();
});

afterAll(async () => {
  await proxy?.stop();
  await db?.drop();
});

/** Where the first ReadyForQuery starts in what the server sent, and the backend's pid (BackendKeyData). */
function startupEnd(seen: Buffer, found: { pid?: number }): number | undefined {
  for (let at = 0; at + 5 <= seen.length;) {
    const type = String.fromCharCode(seen[at]!);
    const length = seen.readInt32BE(at + 1);
    if (at + 1 + length > seen.length) return undefined;
    if (type === 'K') found.pid = seen.readInt32BE(at + 5);
    if (type === 'Z') return at;
    at += 1 + length;
  }
  return undefined;
}

describe('Postgres connections ended by the server', () => {
  it('fails the query that opened it, leaves no unhandled rejection, and the next query reconnects', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => { unhandled.push(reason); };
    process.on('unhandledRejection', onUnhandled);
    const url = new URL(db.url);
    url.port = String(proxy.port);
    const client = connect(url.toString(), { max: 1 });
    try {
      const backend: { pid?: number } = {};
      proxy.hold((seen) => startupEnd(seen, backend));
      const first = client`select 1 as one`.then(() => undefined, (err: unknown) => err as { code?: string });
      const held = await waitFor(() => proxy.connections.at(-1)?.held!, 'the startup to end');
      expect(backend.pid).toBeGreaterThan(0);
      // The server ends the backend (FATAL 57P01, then it closes the socket); the client sees
      // ReadyForQuery, the FATAL and the close in one read. The type query starts a microtask
      // after ReadyForQuery, so the FATAL meets no running query and fails the one that opened
      // the connection; the close then fails the type query.
      await db.sql`select pg_terminate_backend(${backend.pid!})`;
      await waitFor(() => held.serverClosed, 'the backend to close');
      proxy.release();
      expect((await first)?.code).toBe('57P01');
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(unhandled).toEqual([]);
      // The pool opens a new connection (array types fetched again) for the next query.
      expect(await client`select ${[1, 2, 3]}::int[] as xs`).toEqual([{ xs: [1, 2, 3] }]);
      expect(proxy.accepted).toBe(2);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await client.end({ timeout: 1 });
    }
  });

  it('gives a reserved connection that the server ended back to the pool to reconnect, and leaves no query waiting', async () => {
    const client = connect(db.url, { max: 1 });
    /** A query's outcome, or 'waiting' if it has not settled within ten seconds (a reconnect takes milliseconds). */
    const settle = (q: Promise<unknown>) => Promise.race([
      q.then(() => 'ok', (err: { code?: string }) => err.code ?? 'error'),
      new Promise<string>((resolve) => { setTimeout(() => resolve('waiting'), 10_000).unref(); }),
    ]);
    try {
      for (let round = 0; round < 3; round++) {
        const reserved = await client.reserve();
        const [{ pid } = { pid: 0 }] = await reserved<{ pid: number }[]>`select pg_backend_pid() as pid`;
        await db.sql`select pg_terminate_backend(${pid})`;
        // How the end reads depends on timing: the FATAL, a reset, or the close.
        expect(['57P01', 'ECONNRESET', 'CONNECTION_CLOSED']).toContain(await settle(reserved`select 1`));
        // Released at once, as the ClickHouse sync's finally does. If the socket's close has not
        // been read yet, the pool takes the connection back as open and the query given to it next
        // fails at the close; none waits, and the pool's one connection reconnects (before: it
        // stayed among the open ones without a socket, and every later query waited for ever).
        reserved.release();
        const outcomes = [];
        for (let i = 0; i < 3; i++) outcomes.push(await settle(client`select ${i}::int as n`));
        expect(['ok', 'CONNECTION_CLOSED']).toContain(outcomes[0]);
        expect(outcomes.slice(1)).toEqual(['ok', 'ok']);
      }
      const again = await client.reserve();
      expect(await settle(again`select 1`)).toBe('ok');
      again.release();
    } finally {
      await client.end({ timeout: 1 });
    }
  });
});
