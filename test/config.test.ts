import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { ERROR_CODES, TickflowError } from '../src/errors.ts';
import { readFileSync } from 'node:fs';

const dir = mkdtempSync(path.join(tmpdir(), 'tickflow-config-'));
function file(content: unknown): string {
  const f = path.join(dir, `c${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(f, JSON.stringify(content));
  return f;
}
function failure(fn: () => unknown): TickflowError {
  try { fn(); } catch (err) { if (err instanceof TickflowError) return err; throw err; }
  throw new Error('expected a TickflowError');
}

describe('configuration', () => {
  it('defaults to Binance BTC/USDT and ETH/USDT trades, bookTicker and depth with no key', () => {
    const c = loadConfig({ env: {} });
    expect(c.feeds).toHaveLength(1);
    expect(c.feeds[0]).toMatchObject({ venue: 'binance', instruments: ['BTC/USDT', 'ETH/USDT'], channels: ['trade', 'bookTicker', 'depth'] });
    expect(c.secrets).toEqual({});
    expect(Object.isFrozen(c) && Object.isFrozen(c.feeds[0])).toBe(true);
  });

  it('names the key, the value received and what was expected', () => {
    const err = failure(() => loadConfig({ env: {}, file: file({ feeds: [{ name: 'x', venue: 'binanse', channels: ['trade'], instruments: ['BTC/USDT'] }] }) }));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toMatch(/feeds\.0\.venue: expected .*binance.*, received "binanse"/);
    const err2 = failure(() => loadConfig({ env: {}, file: file({ landing: { flushIntervalMs: -5 } }) }));
    expect(err2.message).toMatch(/landing\.flushIntervalMs: expected .*>=1.*received -5/);
    const err3 = failure(() => loadConfig({ env: {}, file: file({ feeds: [{ name: 'x', venue: 'binance', channels: ['trade'], instruments: ['btc-usdt'] }] }) }));
    expect(err3.message).toMatch(/feeds\.0\.instruments\.0: .*canonical instrument.*received "btc-usdt"/);
    const feed = { name: 'spot', venue: 'binance', channels: ['trade'], instruments: ['BTC/USDT'] };
    const err4 = failure(() => loadConfig({ env: {}, file: file({ feeds: [feed, { ...feed, name: 'other' }, { ...feed, instruments: ['ETH/USDT'] }] }) }));
    expect(err4.message).toMatch(/feeds\.2\.name: expected a name no other feed has \(feeds\.0 has it\), received "spot"/);
  });

  it('refuses secrets in the config file and reads them only from the environment or NAME_FILE', () => {
    const err = failure(() => loadConfig({ env: {}, file: file({ feeds: [], oanda: { token: 'abc123456' } }) }));
    expect(err.code).toBe('CONFIG_SECRET_IN_FILE');
    expect(err.message).not.toContain('abc123456');
    const secretFile = path.join(dir, 'token');
    writeFileSync(secretFile, 'file-token-value\n');
    const c = loadConfig({ env: { OANDA_TOKEN_FILE: secretFile, POLYGON_API_KEY: 'env-key-value' } });
    expect(c.secrets).toEqual({ OANDA_TOKEN: 'file-token-value', POLYGON_API_KEY: 'env-key-value' });
  });

  it('documents every error code in README.md', () => {
    const readme = readFileSync(path.join(import.meta.dirname, '..', 'README.md'), 'utf8');
    for (const code of Object.keys(ERROR_CODES)) expect(readme, code).toContain(`\`${code}\``);
  });
});
