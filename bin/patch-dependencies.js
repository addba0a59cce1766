#!/usr/bin/env node
// Applied after every install (npm "postinstall"). postgres.js 3.4.9 can throw an uncatchable
// TypeError from a deferred write after its socket closed (upstream issues porsager/postgres
// #1066, #1154, #1208; fix proposed in #1209, not released). A landing writer must survive
// Postgres restarts, so the deferred write is guarded here and the pending query is rejected
// with CONNECTION_CLOSED instead. Second: its sockets keep Nagle's algorithm on, so a small write
// that follows another (COPY data then CopyDone, or a query right after) waits for a delayed ACK
// (about 40 ms on Linux); a landing writer flushing every few ms cannot afford that, so sockets are
// created with TCP_NODELAY. Third: a new connection fetches the server's array types with a query
// whose promise nothing handles; when the connection closes during that fetch (Postgres killed or
// restarted), the rejection ends the process. The query that opened the connection gets its own
// error (it is retried on the next connection or rejected), so the fetch's rejection is caught;
// the next connection fetches the types again. With it, a closed socket's unsent bytes are
// dropped, so they do not go out ahead of the next connection's startup message, and the running
// query and the server's error for it are cleared, so the next connection's first query does not
// fail with the old socket's error (57P01 after a restart), and queries given to a connection
// between its socket's error and its close fail instead of waiting for ever. Fourth: a
// reserved connection (sql.reserve()) that closes is put among the pool's closed connections, and
// its release() then moved it among the open ones without its socket: later queries given to it
// waited for ever, and the pool had one connection fewer for good. A reservation whose connection
// the pool took back (it clears c.reserved when the socket closes, and may give the connection to
// another reservation) is over: its release() does nothing and its queries fail with
// CONNECTION_CLOSED. Idempotent, each change on its own; a changed upstream file is reported, not
// guessed at.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MARK = '/* tickflow: guard closed socket */';
const files = ['src/connection.js', 'cjs/src/connection.js'].map((f) => path.join(root, 'node_modules', 'postgres', f));
const indexFiles = ['src/index.js', 'cjs/src/index.js'].map((f) => path.join(root, 'node_modules', 'postgres', f));

/** Replaces anchor once, unless mark (part of replacement) is there already; says so when upstream changed. */
function apply(file, text, what, mark, anchor, replacement) {
  if (text.includes(mark)) return text;
  if (!text.includes(anchor)) {
    console.warn(`tickflow: ${file} changed upstream; ${what} was not applied`);
    return text;
  }
  return text.replace(anchor, replacement);
}

for (const file of indexFiles.filter(existsSync)) {
  const mark = '/* tickflow: the reservation that is still this one */';
  const text = apply(file, readFileSync(file, 'utf8'), 'the reserved-connection guard', mark,
    '    c.reserved.release = true\n\n    const sql = Sql(handler)\n    sql.release = () => {\n      c.reserved = null\n      onopen(c)\n    }\n\n' +
    '    return sql\n\n    function handler(q) {\n      c.queue === full\n',
    // A reservation whose connection closed is over (the pool cleared c.reserved and may have
    // given the connection to someone else): its release does nothing and its queries fail.
    `    c.reserved.release = true\n    const mine = c.reserved ${mark}\n\n    const sql = Sql(handler)\n    sql.release = () => {\n` +
    '      if (c.reserved !== mine) return\n      c.reserved = null\n      onopen(c)\n    }\n\n    return sql\n\n    function handler(q) {\n' +
    "      if (c.reserved !== mine) return q.reject(Errors.connection('CONNECTION_CLOSED', options, options))\n      c.queue === full\n");
  writeFileSync(file, text);
}

for (const file of files.filter(existsSync)) {
  let text = readFileSync(file, 'utf8');
  const fetchMark = '/* tickflow: type fetch on a closing connection */';
  text = apply(file, text, 'the array-type fetch guard', fetchMark,
    '        return fetchArrayTypes()\n', `        return fetchArrayTypes().catch(() => {}) ${fetchMark}\n`);
  const chunkMark = '/* tickflow: a closed socket\'s unsent bytes */';
  text = apply(file, text, 'dropping a closed socket\'s unsent bytes', chunkMark,
    '  async function closed(hadError) {\n    incoming = Buffer.alloc(0)\n',
    `  async function closed(hadError) {\n    incoming = Buffer.alloc(0)\n    chunk = null ${chunkMark}\n`);
  // The query that was running, and an error the server sent for it, belong to the closed socket:
  // left set, the next connection's first ReadyForQuery failed its own first query with that
  // error. Queries given to the connection after a socket error (before its close) are failed
  // too: they were left waiting for ever.
  const stateMark = '/* tickflow: a closed socket\'s query and error */';
  text = apply(file, text, 'clearing a closed connection\'s query state', stateMark,
    '    if (initial)\n      return reconnect()\n\n' +
    "    !hadError && (query || sent.length) && error(Errors.connection('CONNECTION_CLOSED', options, socket))\n",
    `    errorResponse = null ${stateMark}\n    if (initial) {\n      query = null\n      return reconnect()\n    }\n\n` +
    "    if (query || sent.length) error(Errors.connection('CONNECTION_CLOSED', options, socket))\n    query = null\n");
  if (!text.includes(MARK)) {
    const before = '  function nextWrite(fn) {\n    const x = socket.write(chunk, fn)';
    if (!text.includes(before)) {
      console.warn(`tickflow: ${file} changed upstream; the nextWrite guard was not applied`);
    } else {
      text = text.replace(before, `  function nextWrite(fn) {
    if (socket === null) { ${MARK}
      nextWriteTimer !== null && clearImmediate(nextWriteTimer)
      chunk = nextWriteTimer = null
      error(Errors.connection('CONNECTION_CLOSED', options, socket))
      return false
    }
    const x = socket.write(chunk, fn)`);
      text = text.replace(/^    clearImmediate\(nextWriteTimer\)\n/gm, '    clearImmediate(nextWriteTimer)\n    nextWriteTimer = null\n');
    }
  }
  text = apply(file, text, 'TCP_NODELAY', '/* tickflow: no Nagle delay */', '        : new net.Socket()\n',
    '        : new net.Socket()\n      x.setNoDelay && x.setNoDelay(true) /* tickflow: no Nagle delay */\n');
  writeFileSync(file, text);
}
