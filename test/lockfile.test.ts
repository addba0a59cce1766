import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// `npm ci` refuses a lockfile that lacks an optional dependency. chdb lists platform libraries
// that this registry does not serve (only linux-x64 is), so `npm install` leaves them out of the
// lockfile; they are kept in it by hand (optional, with their os/cpu, never fetched here).
describe('package-lock.json', () => {
  it('has an entry for every optional platform library of chdb, so npm ci accepts it', () => {
    const root = path.join(import.meta.dirname, '..');
    const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, unknown> };
    const chdb = JSON.parse(readFileSync(path.join(root, 'node_modules', 'chdb', 'package.json'), 'utf8')) as { optionalDependencies: Record<string, string> };
    const missing = Object.keys(chdb.optionalDependencies).filter((name) => !(`node_modules/${name}` in lock.packages));
    expect(missing).toEqual([]);
  });
});
