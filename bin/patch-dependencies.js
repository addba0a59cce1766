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
// dropped, so they do not go out ahead of the next connection's startup message. Idempotent; a
// changed upstream file is reported, not guessed at.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MARK = '/* tickflow: guard closed socket */';
const files = ['src/connection.js', 'cjs/src/connection.js'].map((f) => path.join(root, 'node_modules', 'postgres', f));

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
  return text
    .replace(fetch, `        return fetchArrayTypes().catch(() => {}) ${TYPES_MARK}\n`)
    .replace(closed, `${closed}    chunk = null\n`);
}
