import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fail } from '../core/errors.js';

/** Data directories locked by this process (a second Store in the same process must fail too). */
const lockedHere = new Set<string>();

/**
 * One node per data directory: a `LOCK` file holding the owner's pid. A lock left by a process
 * that is gone (kill -9) is taken over; one held by a live process is refused.
 */
export class DataDirLock {
  private readonly file: string;

  constructor(dataDir: string) {
    this.file = join(dataDir, 'LOCK');
    if (lockedHere.has(this.file)) fail('STRATA_UNAVAILABLE', `${dataDir} is already open in this process`);
    for (let attempt = 0; attempt < 2; attempt += 1) {
      try {
        writeFileSync(this.file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
        lockedHere.add(this.file);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const owner = Number(readFileSync(this.file, 'utf8').trim());
        if (Number.isSafeInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
          fail(
            'STRATA_UNAVAILABLE',
            `${dataDir} is in use by another process (pid ${owner}; is another strata serve running?)`,
          );
        }
        rmSync(this.file, { force: true });
      }
    }
    fail('STRATA_UNAVAILABLE', `cannot lock ${dataDir}`);
  }

  release(): void {
    if (!lockedHere.delete(this.file)) return;
    rmSync(this.file, { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
