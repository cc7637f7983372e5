import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { expectError } from '../../../test/support/api.js';
import { waitFor } from '../../../test/support/wait.js';
import { LinkAuth } from '../../cluster/link-auth.js';
import { systemClock } from '../../core/clock.js';
import { sha256 } from '../../core/hash.js';
import type { NodeId } from '../../core/ids.js';
import { type ClusterConfig, defaultLimits, type StrataNode, startNode } from '../../node.js';

const adminToken = 'test-admin-token-0123456789abcdef';
const admin = { authorization: `Bearer ${adminToken}` };
const clusterKey = 'route-test-cluster-key-0123456789';
const peerId = '0123456789abcdef' as NodeId;

const started: Array<{ node: StrataNode; dataDir: string }> = [];
afterEach(async () => {
  for (const { node, dataDir } of started.splice(0)) {
    await node.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

/**
 * A node in process, as test/support/temp-node.ts makes one, but with cluster options (which
 * tempNode does not take). With no `join` it dials no one: these tests need no sockets.
 */
function clusterNode(cluster: ClusterConfig | undefined, onLeave?: () => void): StrataNode {
  const dataDir = mkdtempSync(join(tmpdir(), 'strata-cluster-route-'));
  const node = startNode({
    dataDir,
    clock: systemClock,
    limits: defaultLimits,
    adminToken,
    ...(cluster ? { cluster } : {}),
    ...(onLeave ? { onLeave } : {}),
  });
  started.push({ node, dataDir });
  return node;
}

const withKey = (onLeave?: () => void) =>
  clusterNode(
    {
      key: clusterKey,
      join: [],
      advertise: 'http://127.0.0.1:17070',
      name: 'route-node',
      geo: { lat: 1, lon: 2 },
    },
    onLeave,
  );
const withoutKey = () => clusterNode({ join: [], advertise: 'http://127.0.0.1:17071' });

async function readToken(node: StrataNode): Promise<Record<string, string>> {
  const response = await node.app.inject({
    method: 'POST',
    url: '/v1/tokens',
    headers: { ...admin, 'content-type': 'application/json' },
    payload: JSON.stringify({ role: 'read', name: 'reader' }),
  });
  expect(response.statusCode, response.body).toBe(201);
  return { authorization: `Bearer ${(response.json() as { token: string }).token}` };
}

async function put(node: StrataNode, key: string, body: string): Promise<void> {
  const response = await node.app.inject({
    method: 'PUT',
    url: `/v1/buckets/b/keys/${key}`,
    headers: admin,
    payload: body,
  });
  expect(response.statusCode, response.body).toBe(201);
}

interface Status {
  node: string;
  clustered: boolean;
  members: Array<{
    id: string;
    self: boolean;
    state: string;
    name: string;
    url: string;
    revision: Record<string, number>;
    geo: unknown;
  }>;
  counters: Record<string, unknown>;
  timing: { degree: number; maxClockSkewMs: number };
  links: { eager: string[]; lazy: string[] };
}

describe('GET /v1/cluster/status', () => {
  it('needs a token', async () => {
    const node = withKey();
    expectError(await node.app.inject({ url: '/v1/cluster/status' }), 401, 'STRATA_UNAUTHORIZED');
    expectError(
      await node.app.inject({ url: '/v1/cluster/status', headers: { authorization: 'Bearer nope' } }),
      401,
      'STRATA_UNAUTHORIZED',
    );
  });

  it('shows the node itself, alive, with its revision after a write (a read token is enough)', async () => {
    const node = withKey();
    const reader = await readToken(node);
    const status = async () => {
      const response = await node.app.inject({ url: '/v1/cluster/status', headers: reader });
      expect(response.statusCode, response.body).toBe(200);
      return response.json() as Status;
    };
    const own = (await status()).members[0]?.revision[node.store.nodeId] ?? 0;
    await put(node, 'k1', 'one');
    await put(node, 'k2', 'two');
    const after = await status();
    expect(after).toMatchObject({
      node: node.store.nodeId,
      clustered: true,
      timing: { degree: 4, maxClockSkewMs: 500 },
      links: { eager: [], lazy: [] },
      trees: [],
    });
    expect(after.members).toHaveLength(1);
    expect(after.members[0]).toMatchObject({
      id: node.store.nodeId,
      self: true,
      state: 'alive',
      name: 'route-node',
      url: 'http://127.0.0.1:17070',
      geo: { lat: 1, lon: 2 },
      revision: { [node.store.nodeId]: own + 2 },
    });
    expect(after.counters).toMatchObject({ gossipReceived: 0, refused: { unauthenticated: 0 } });
  });

  it('says clustered: false on a node without a cluster key', async () => {
    const node = withoutKey();
    const response = await node.app.inject({ url: '/v1/cluster/status', headers: admin });
    expect(response.statusCode).toBe(200);
    const status = response.json() as Status;
    expect(status.clustered).toBe(false);
    expect(status.members.map((member) => member.id)).toEqual([node.store.nodeId]);
  });
});

describe('GET /v1/cluster/events', () => {
  it('needs a token', async () => {
    expectError(await withKey().app.inject({ url: '/v1/cluster/events' }), 401, 'STRATA_UNAUTHORIZED');
  });

  it('ends the stream with an error event once its token is revoked', { timeout: 15_000 }, async () => {
    const node = withKey();
    const created = await node.app.inject({
      method: 'POST',
      url: '/v1/tokens',
      headers: { ...admin, 'content-type': 'application/json' },
      payload: JSON.stringify({ role: 'read', name: 'watcher' }),
    });
    const { id, token } = created.json() as { id: string; token: string };
    const address = await node.app.listen({ port: 0, host: '127.0.0.1' });
    const controller = new AbortController();
    try {
      const response = await fetch(`${address}/v1/cluster/events`, {
        headers: { authorization: `Bearer ${token}` },
        signal: controller.signal,
      });
      expect(response.status).toBe(200);
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      const decoder = new TextDecoder();
      let text = '';
      const readUntil = async (done: () => boolean) => {
        while (!done()) {
          const { value, done: ended } = await reader.read();
          if (ended) return;
          text += decoder.decode(value, { stream: true });
        }
      };
      await readUntil(() => text.includes('event: counters'));
      const revoked = await node.app.inject({ method: 'DELETE', url: `/v1/tokens/${id}`, headers: admin });
      expect(revoked.statusCode, revoked.body).toBe(200);
      const seen = text.length;
      await readUntil(() => false); // until the server ends the stream
      // A counters event written before the revocation may still be in flight; the last is the refusal.
      const blocks = text.slice(seen).trim().split('\n\n');
      expect(blocks.at(-1)).toMatch(/^event: error\ndata: \{"error":\{"code":"STRATA_UNAUTHORIZED"/);
      expect(blocks.filter((block) => block.startsWith('event: error'))).toHaveLength(1);
    } finally {
      controller.abort();
    }
  });
});

describe('POST /v1/cluster/leave', () => {
  it('needs an admin token', async () => {
    const node = withKey();
    expectError(
      await node.app.inject({ method: 'POST', url: '/v1/cluster/leave' }),
      401,
      'STRATA_UNAUTHORIZED',
    );
    const reader = await readToken(node);
    expectError(
      await node.app.inject({ method: 'POST', url: '/v1/cluster/leave', headers: reader }),
      403,
      'STRATA_FORBIDDEN',
    );
  });

  it('is a conflict on a node without a cluster key', async () => {
    let left = false;
    const node = clusterNode({ join: [], advertise: 'http://127.0.0.1:17072' }, () => {
      left = true;
    });
    expectError(
      await node.app.inject({ method: 'POST', url: '/v1/cluster/leave', headers: admin }),
      409,
      'STRATA_CONFLICT',
    );
    expect(left).toBe(false);
  });

  it('announces the departure, answers 202, then asks the node to stop', async () => {
    let left = false;
    const node = withKey(() => {
      left = true;
    });
    await put(node, 'before-leaving', 'x');
    const own = node.store.revision()[node.store.nodeId] ?? 0;
    expect(own).toBeGreaterThan(0);
    const response = await node.app.inject({ method: 'POST', url: '/v1/cluster/leave', headers: admin });
    expect(response.statusCode, response.body).toBe(202);
    // No peer is alive to hand its commits to: it says how many none holds.
    expect(response.json()).toEqual({ left: true, node: node.store.nodeId, unreplicated: own });
    await waitFor(() => left, { timeoutMs: 5000, what: 'onLeave after the answer' });
    const status = (await node.app.inject({ url: '/v1/cluster/status', headers: admin })).json() as Status;
    expect(status.members[0]).toMatchObject({ self: true, left: true });
    // A node that has left takes no more writes: they would never reach the cluster.
    const refused = await node.app.inject({
      method: 'PUT',
      url: '/v1/buckets/b/keys/after-leaving',
      headers: admin,
      payload: 'y',
    });
    expectError(refused, 503, 'STRATA_UNAVAILABLE');
    expect(refused.json().error.message).toContain('leaving its cluster');
    expect(node.store.revision()[node.store.nodeId]).toBe(own);
  });
});

describe('GET /v1/cluster/blobs/{hash}', () => {
  const bytes = 'blob bytes for a peer';
  const hash = sha256(bytes);
  const url = `/v1/cluster/blobs/${hash}`;

  it('refuses a request without the cluster headers: 401 with a key, 403 on a node without one', async () => {
    const node = withKey();
    await put(node, 'k', bytes);
    expectError(await node.app.inject({ url }), 401, 'STRATA_UNAUTHORIZED');
    // A user token is not a peer.
    expectError(await node.app.inject({ url, headers: admin }), 401, 'STRATA_UNAUTHORIZED');

    const alone = withoutKey();
    await put(alone, 'k', bytes);
    expectError(await alone.app.inject({ url }), 403, 'STRATA_FORBIDDEN');
    const headers = new LinkAuth(clusterKey, Date.now).dial(peerId, 'peer');
    expectError(await alone.app.inject({ url, headers: { ...headers } }), 403, 'STRATA_FORBIDDEN');
  });

  it('serves the bytes to a peer holding the cluster key, once per proof', async () => {
    const node = withKey();
    await put(node, 'k', bytes);
    const auth = new LinkAuth(clusterKey, Date.now);
    const headers = { ...auth.dial(peerId, 'peer') };
    const response = await node.app.inject({ url, headers });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.body).toBe(bytes);
    expect(response.headers['content-type']).toBe('application/octet-stream');
    // A replayed proof is refused.
    expectError(await node.app.inject({ url, headers }), 401, 'STRATA_UNAUTHORIZED');
  });

  it('refuses a proof made with another key', async () => {
    const node = withKey();
    await put(node, 'k', bytes);
    const stranger = new LinkAuth('some-other-cluster-key-0123', Date.now);
    expectError(
      await node.app.inject({ url, headers: { ...stranger.dial(peerId, 'x') } }),
      401,
      'STRATA_UNAUTHORIZED',
    );
  });

  it('answers 400 to a malformed hash and 404 to an unknown one', async () => {
    const node = withKey();
    const auth = new LinkAuth(clusterKey, Date.now);
    expectError(
      await node.app.inject({ url: '/v1/cluster/blobs/ABC', headers: { ...auth.dial(peerId, 'p') } }),
      400,
      'STRATA_BAD_REQUEST',
    );
    expectError(
      await node.app.inject({
        url: `/v1/cluster/blobs/${'0'.repeat(64)}`,
        headers: { ...auth.dial(peerId, 'p') },
      }),
      404,
      'STRATA_NOT_FOUND',
    );
  });
});

describe('GET /metrics', () => {
  it('has the strata_cluster_ series, counting refused peers', async () => {
    const node = withKey();
    await node.app.inject({ url: `/v1/cluster/blobs/${'0'.repeat(64)}` });
    const text = (await node.app.inject({ url: '/metrics' })).body;
    for (const name of [
      'strata_cluster_members',
      'strata_cluster_links',
      'strata_cluster_broadcast_trees',
      'strata_cluster_replication_delay_ms',
      'strata_cluster_clock_offset_ms',
      'strata_cluster_pending_commits',
    ])
      expect(text).toContain(`# TYPE ${name} gauge`);
    // What only grows is a counter, as its _total says.
    for (const name of [
      'strata_cluster_messages_sent_total',
      'strata_cluster_broadcast_total',
      'strata_cluster_peers_refused_total',
      'strata_cluster_link_bytes_total',
      'strata_cluster_link_frames_total',
    ])
      expect(text).toContain(`# TYPE ${name} counter`);
    expect(text).toMatch(/^strata_cluster_members\{state="alive"\} 1$/m);
    expect(text).toMatch(/^strata_cluster_members\{state="dead"\} 0$/m);
    expect(text).toMatch(/^strata_cluster_peers_refused_total\{reason="unauthenticated"\} 1$/m);
    expect(text).toMatch(/^strata_cluster_pending_commits\{stage="waiting"\} 0$/m);
    expect(text).toMatch(/^strata_cluster_link_frames_total\{direction="sent"\} 0$/m);
    expect(text).toMatch(/^strata_cluster_broadcast_trees 0$/m);
  });
});
