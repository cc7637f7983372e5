import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Clock, systemClock } from '../../src/core/clock.js';
import type { Limits } from '../../src/http/context.js';
import { defaultLimits, type StrataNode, startNode } from '../../src/node.js';

export const adminToken = 'test-admin-token-0123456789abcdef';
export const auth = { authorization: `Bearer ${adminToken}` };

export interface TempNode extends StrataNode {
  dataDir: string;
  /** Closes the node and removes its data directory. */
  dispose(): Promise<void>;
}

/** A node on a fresh data directory, for app.inject() tests. */
export function tempNode(
  options: { clock?: Clock; limits?: Partial<Limits>; dataDir?: string } = {},
): TempNode {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'strata-test-'));
  const node = startNode({
    dataDir,
    clock: options.clock ?? systemClock,
    limits: { ...defaultLimits, ...options.limits },
    adminToken,
  });
  return {
    ...node,
    dataDir,
    async dispose() {
      await node.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
