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
// its release() then moved it among the open ones, socket and all gone: every later query given to
// it failed with CONNECTION_CLOSED and the pool had one connection fewer, for good. A connection
// that is no longer reserved is left where the pool put it. Idempotent; a changed upstream file is
// reported, not guessed at.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MARK = '/* tickflow: guard closed socket */';
const files = ['src/connection.js', 'cjs/src/connection.js'].map((f) => path.join(root, 'node_modules', 'postgres', f));
const indexFiles = ['src/index.js', 'cjs/src/index.js'].map((f) => path.join(root, 'node_modules', 'postgres', f));
const RELEASE_MARK = '/* tickflow: release only a connection still reserved */';

for (const file of indexFiles.filter(existsSync)) {
  const text = readFileSync(file, 'utf8');
  if (text.includes(RELEASE_MARK)) continue;
  const release = '    sql.release = () => {\n      c.reserved = null\n      onopen(c)\n';
  if (!text.includes(release)) {
    console.warn(`tickflow: ${file} changed upstream; the reserved-connection release guard was not applied`);
    continue;
  }
  writeFileSync(file, text.replace(release,
    `    sql.release = () => {\n      if (c.queue !== reserved && c.queue !== full) return ${RELEASE_MARK}\n      c.reserved = null\n      onopen(c)\n`));
}

const TYPES_MARK = '/* tickflow: type fetch on a closing connection */';

for (const file of files.filter(existsSync)) {
  let text = readFileSync(file, 'utf8');
  text = patchTypeFetch(file, text);
  if (text.includes(MARK)) {
    writeFileSync(file, text);
    continue;
  }
  const before = '  function nextWrite(fn) {\n    const x = socket.write(chunk, fn)';
  if (!text.includes(before)) {
    console.warn(`tickflow: ${file} changed upstream; the nextWrite guard was not applied`);
    continue;
  }
  text = text.replace(before, `  function nextWrite(fn) {
    if (socket === null) { ${MARK}
      nextWriteTimer !== null && clearImmediate(nextWriteTimer)
      chunk = nextWriteTimer = null
      error(Errors.connection('CONNECTION_CLOSED', options, socket))
      return false
    }
    const x = socket.write(chunk, fn)`);
  text = text.replace(/^    clearImmediate\(nextWriteTimer\)\n/gm, '    clearImmediate(nextWriteTimer)\n    nextWriteTimer = null\n');
  const socketLine = "        : new net.Socket()\n";
  if (text.includes(socketLine)) {
    text = text.replace(socketLine, "        : new net.Socket()\n      x.setNoDelay && x.setNoDelay(true) /* tickflow: no Nagle delay */\n");
  } else {
    console.warn(`tickflow: ${file} changed upstream; TCP_NODELAY was not applied`);
  }
  writeFileSync(file, text);
}

function patchTypeFetch(file, text) {
  if (text.includes(TYPES_MARK)) return text;
  const fetch = '        return fetchArrayTypes()\n';
  const closed = '  async function closed(hadError) {\n    incoming = Buffer.alloc(0)\n';
  if (!text.includes(fetch) || !text.includes(closed)) {
    console.warn(`tickflow: ${file} changed upstream; the array-type fetch guard was not applied`);
    return text;
  }
  const reconnect = '    if (initial)\n      return reconnect()\n\n' +
    "    !hadError && (query || sent.length) && error(Errors.connection('CONNECTION_CLOSED', options, socket))\n";
  if (!text.includes(reconnect)) {
    console.warn(`tickflow: ${file} changed upstream; the closed connection's query state was not cleared`);
    return text;
  }
  return text
    .replace(fetch, `        return fetchArrayTypes().catch(() => {}) ${TYPES_MARK}\n`)
    .replace(closed, `${closed}    chunk = null\n`)
    // The query that was running, and an error the server sent for it, belong to the closed socket:
    // left set, the next connection's first ReadyForQuery failed its own first query with that error.
    // Queries given to the connection after a socket error (before its close) are failed too:
    // they were left waiting for ever, and answers to the next connection's queries went to them.
    .replace(reconnect, '    errorResponse = null\n    if (initial) {\n      query = null\n      return reconnect()\n    }\n\n' +
      "    if (query || sent.length) error(Errors.connection('CONNECTION_CLOSED', options, socket))\n    query = null\n");
}
