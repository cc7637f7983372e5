import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { valueBytes, valueFor } from './value.mjs';

/**
 * Serial durable writes straight to the disk: write 1 KB, fdatasync, repeat. This is the most
 * commits per second one writer can make durable one at a time, whatever the software on top.
 *
 * Two patterns, because the disk and the file system treat them differently:
 * - `append` grows the file, so each sync also commits the new size (a journal write on ext4/xfs);
 * - `overwrite` rewrites the same block, so fdatasync flushes data only. SQLite's WAL is mostly
 *   this once it has been checkpointed and restarts from its beginning.
 */
export function measureFdatasync(dir, pattern, durationMs) {
  const path = join(dir, `fdatasync-${pattern}.bin`);
  const fd = openSync(path, 'w');
  try {
    let syncs = 0;
    const startMs = performance.now();
    const stopMs = startMs + durationMs;
    while (performance.now() < stopMs) {
      const position = pattern === 'append' ? syncs * valueBytes : 0;
      writeSync(fd, valueFor(0, syncs), 0, valueBytes, position);
      fdatasyncSync(fd);
      syncs++;
    }
    const elapsedMs = performance.now() - startMs;
    return { pattern, syncs, perSecond: (syncs * 1000) / elapsedMs, meanMs: elapsedMs / syncs };
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
}
