import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
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

export interface TempNodeOptions {
  clock?: Clock;
  limits?: Partial<Limits>;
  dataDir?: string;
  /** The app served at / (as `strata serve --default-app`). */
  defaultApp?: string;
}

/** A node on a fresh data directory, for app.inject() tests. */
export function tempNode(options: TempNodeOptions = {}): TempNode {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'strata-test-'));
  const node = startNode({
    dataDir,
    clock: options.clock ?? systemClock,
    limits: { ...defaultLimits, ...options.limits },
    adminToken,
    defaultApp: options.defaultApp,
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

/**
 * A `tempNode` factory for a test file: every node it starts is disposed of after the test that
 * started it. Call it once at the top level of the file (it registers the afterEach hook).
 */
export function tempNodesPerTest(): (options?: TempNodeOptions) => TempNode {
  const nodes: TempNode[] = [];
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((node) => node.dispose()));
  });
  return (options = {}) => {
    const node = tempNode(options);
    nodes.push(node);
    return node;
  };
}
