import { randomUUID } from 'node:crypto';
import http from 'node:http';

/**
 * A ClickHouse server's HTTP interface on 127.0.0.1, answered by the real engine (chdb) in this
 * process, so tickflow's server mode (CLICKHOUSE_URL, @clickhouse/client over HTTP) runs against
 * real ClickHouse SQL where no server can be installed. What it implements of the interface:
 *  - GET /ping -> "Ok.";
 *  - the query in the body, or in the `query` URL parameter with the body appended (INSERT … FORMAT
 *    X, then the rows), as the server reads them;
 *  - URL parameters: `database`, `query_id`, `param_<name>` (query parameters, bound by the engine),
 *    `default_format` (TabSeparated when absent, as on a server), and every other one as a setting
 *    of that request; the HTTP-layer settings (wait_end_of_query and the like) are accepted and
 *    have no effect;
 *  - user and password from Basic authorization or X-ClickHouse-User / X-ClickHouse-Key, checked
 *    against the ones given (516 AUTHENTICATION_FAILED otherwise);
 *  - errors as the server sends them: a non-200 status, `X-ClickHouse-Exception-Code`, and the
 *    engine's own "Code: N. DB::Exception: …" text as the body;
 *  - X-ClickHouse-Query-Id, -Format, -Timezone and -Summary headers on success.
 * Settings are applied with SET in the engine's one session, so a setting outlives its request
 * (a server forgets it): tickflow sends its base settings with every request, which hides that.
 * Responses are sent whole, not streamed; compression is not offered.
 */
export interface FakeClickHouseOptions {
  /** The engine's data folder. */
  dir: string;
  user: string;
  password: string;
}

/** URL parameters that are not settings. */
const NOT_SETTINGS = new Set(['query', 'database', 'query_id', 'default_format', 'session_id', 'role', 'user', 'password']);
/** Settings of the HTTP layer, which the engine does not know. */
const HTTP_SETTINGS = new Set(['wait_end_of_query', 'send_progress_in_http_headers', 'http_response_buffer_size',
  'http_headers_progress_interval_ms', 'http_send_progress_interval_ms', 'enable_http_compression',
  'http_zlib_compression_level', 'http_response_compression_method', 'http_native_compression_disable_checksumming_on_decompress']);

interface ChdbSession {
  queryAsync(sql: string, opts: { format: string }): Promise<ChdbResult>;
  queryBindAsync(sql: string, params: Record<string, string>, opts: { format: string }): Promise<ChdbResult>;
  close(): void;
}
interface ChdbResult { bytes(): Uint8Array; elapsed: number; rowsRead: number; bytesRead: number }

/** A value of a `param_` URL parameter is in the escaped text form; the engine binder escapes again. */
function unescapeParam(value: string): string {
  return value.replace(/\\(.)/g, (_, c: string) => ({ t: '\t', n: '\n', r: '\r', '0': '\0', b: '\b', f: '\f' }[c] ?? c));
}

function quoteSetting(value: string): string {
  return /^-?[0-9]+(\.[0-9]+)?$/.test(value) ? value : `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export class FakeClickHouse {
  readonly server: http.Server;
  port = 0;
  /** Every request: its path, its URL parameters' names, the user it came as, and its status. */
  requests: Array<{ path: string; params: string[]; user: string | undefined; status: number }> = [];
  private session: ChdbSession | undefined;
  /** One statement at a time, in arrival order: the engine's session is one connection. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: FakeClickHouseOptions) {
    // A client gone in the middle of its request (killed, aborted) leaves nothing to answer.
    this.server = http.createServer((req, res) => { this.handle(req, res).catch(() => res.destroy()); });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    const { Session } = (await import('chdb')) as unknown as { Session: new (dir: string) => ChdbSession };
    this.session = new Session(this.opts.dir);
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.queue.catch(() => undefined);
    this.session?.close();
    this.session = undefined;
  }

  private credentials(req: http.IncomingMessage): { user: string | undefined; password: string | undefined } {
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
    if (basic) {
      const text = Buffer.from(basic[1]!, 'base64').toString('utf8');
      const colon = text.indexOf(':');
      return { user: text.slice(0, colon), password: text.slice(colon + 1) };
    }
    const user = req.headers['x-clickhouse-user'];
    const key = req.headers['x-clickhouse-key'];
    return { user: typeof user === 'string' ? user : undefined, password: typeof key === 'string' ? key : undefined };
  }

  private reply(res: http.ServerResponse, status: number, body: Uint8Array | string, headers: Record<string, string>): void {
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=UTF-8', ...headers });
    res.end(body);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const { user, password } = this.credentials(req);
    const record = { path: url.pathname, params: [...url.searchParams.keys()], user, status: 200 };
    this.requests.push(record);
    if (url.pathname === '/ping') {
      this.reply(res, 200, 'Ok.\n', {});
      return;
    }
    if (user !== this.opts.user || password !== this.opts.password) {
      record.status = 403;
      this.reply(res, 403, `Code: 516. DB::Exception: ${user ?? 'default'}: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)\n`,
        { 'X-ClickHouse-Exception-Code': '516' });
      return;
    }
    const queryId = url.searchParams.get('query_id') ?? randomUUID();
    const format = url.searchParams.get('default_format') ?? 'TabSeparated';
    const statements: string[] = [];
    const params: Record<string, string> = {};
    for (const [key, value] of url.searchParams) {
      if (key.startsWith('param_')) params[key.slice(6)] = unescapeParam(value);
      else if (!NOT_SETTINGS.has(key) && !HTTP_SETTINGS.has(key)) statements.push(`SET ${key} = ${quoteSetting(value)}`);
    }
    statements.push(`USE \`${(url.searchParams.get('database') ?? 'default').replace(/`/g, '')}\``);
    const inUrl = url.searchParams.get('query');
    const sql = inUrl === null ? body : body.length > 0 ? `${inUrl}\n${body}` : inUrl;
    const run = this.queue.then(() => {
      const text = `${statements.join('; ')}; ${sql}`;
      return Object.keys(params).length > 0 ? this.session!.queryBindAsync(text, params, { format }) : this.session!.queryAsync(text, { format });
    });
    this.queue = run.catch(() => undefined);
    try {
      const result = await run;
      const bytes = result.bytes();
      this.reply(res, 200, bytes, {
        'X-ClickHouse-Query-Id': queryId,
        'X-ClickHouse-Format': format,
        'X-ClickHouse-Timezone': 'UTC',
        'X-ClickHouse-Summary': JSON.stringify({
          read_rows: String(result.rowsRead ?? 0), read_bytes: String(result.bytesRead ?? 0), written_rows: '0', written_bytes: '0',
          total_rows_to_read: '0', result_rows: '0', result_bytes: String(bytes.length), elapsed_ns: String(Math.round((result.elapsed ?? 0) * 1e9)),
        }),
      });
    } catch (err) {
      const message = (err as Error).message;
      const code = /Code: (\d+)/.exec(message)?.[1] ?? '1000';
      record.status = 500;
      this.reply(res, 500, `${message}\n`, { 'X-ClickHouse-Query-Id': queryId, 'X-ClickHouse-Exception-Code': code });
    }
  }
}
