import type {} from '@fastify/websocket';
import type { FastifyInstance } from 'fastify';
import type WebSocket from 'ws';
import type { ClusterService } from '../../cluster/cluster-service.js';
import { fail } from '../../core/errors.js';
import { isSha256Hex } from '../../core/ids.js';
import { formatTime } from '../../core/time.js';
import { type Context, requireRole } from '../context.js';
import { openEventStream, stillAllowed } from '../event-stream.js';
import { isUpgrade, refuseBody } from '../params.js';
import { sendBlob } from '../send-blob.js';

/** Between two `counters` events on the cluster event stream. */
const countersIntervalMs = 1_000;

export function clusterRoutes(cluster: ClusterService, onLeave: () => void) {
  return async (app: FastifyInstance, context: Context): Promise<void> => {
    const streams = new Set<{ end(): void }>();
    app.addHook('preClose', async () => {
      for (const stream of streams) stream.end();
    });
    // Peer links. The upgrade is authenticated with the cluster key inside `accept`, which also
    // needs the dialer's nonce for its answer.
    app.route({
      method: 'GET',
      url: '/v1/cluster/link',
      // A node without a cluster key refuses before upgrading: a dialer learns why from the status.
      preValidation: async (request) => {
        if (!cluster.enabled && request.headers.upgrade !== undefined) cluster.verifyPeer(request.headers);
        // What ws would refuse with an HTML page, refused here in Strata's form.
        if (isUpgrade(request)) checkWebSocketUpgrade(request.headers);
      },
      handler: async () =>
        fail('STRATA_BAD_REQUEST', '/v1/cluster/link is a WebSocket between peers: send Upgrade: websocket'),
      wsHandler: (socket: WebSocket, request) => {
        cluster.accept(socket, request.headers);
      },
    });

    // Bulk pulls by peers: a blob by hash, streamed.
    app.get('/v1/cluster/blobs/:hash', async (request, reply) => {
      cluster.verifyPeer(request.headers);
      const { hash } = request.params as { hash: string };
      if (!isSha256Hex(hash)) fail('STRATA_BAD_REQUEST', 'a blob hash is 64 lowercase hexadecimal digits');
      let blob = context.store.blobs.get(hash);
      if (!blob) {
        // A commit that waits only for this blob may have been pushed on before the blob came.
        await cluster.blobArrival(hash);
        blob = context.store.blobs.get(hash);
      }
      if (!blob) fail('STRATA_NOT_FOUND', `no blob ${hash}`);
      void reply.header('Content-Type', 'application/octet-stream');
      return sendBlob(request, reply, blob, `"${hash}"`);
    });

    app.get('/v1/cluster/status', async (request) => {
      requireRole(request, 'read');
      const members = cluster.status();
      const replica = cluster.replica;
      return {
        node: context.store.nodeId,
        clustered: cluster.enabled,
        members,
        unreachable: cluster
          .unreachable()
          .map((trouble) => ({ ...trouble, since: formatTime(trouble.since) })),
        counters: countersOf(cluster),
        timing: { degree: replica.timing.degree, maxClockSkewMs: replica.timing.maxClockSkewMs },
        links: { eager: [...replica.plumtree.eager], lazy: [...replica.plumtree.lazy] },
        trees: replica.plumtree.origins().map((origin) => ({ origin, ...replica.plumtree.treeOf(origin) })),
      };
    });

    app.get('/v1/cluster/events', async (request, reply) => {
      requireRole(request, 'read');
      const raw = openEventStream(reply, context.metrics);
      // The token is checked again before each event: a revoked one ends the stream.
      const recheck = () => {
        request.principal = context.tokens.authenticate(request.headers.authorization);
        requireRole(request, 'read');
      };
      const send = (type: string, data: object) => {
        if (stillAllowed(raw, recheck)) raw.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
      };
      const onEvent = (event: object & { type: string }) => send(event.type, event);
      const counters = setInterval(() => send('counters', countersOf(cluster)), countersIntervalMs);
      cluster.on('event', onEvent);
      const close = () => {
        clearInterval(counters);
        cluster.off('event', onEvent);
      };
      streams.add(raw);
      raw.on('close', () => {
        close();
        streams.delete(raw);
      });
    });

    app.post('/v1/cluster/leave', async (request, reply) => {
      requireRole(request, 'admin');
      refuseBody(request, 'POST /v1/cluster/leave');
      if (!cluster.enabled) fail('STRATA_CONFLICT', 'this node is not in a cluster (it has no cluster key)');
      const { unreplicated } = await cluster.leave();
      // Answer first, then stop the node: a departed node does not serve.
      reply.raw.once('finish', onLeave);
      return reply.status(202).send({ left: true, node: context.store.nodeId, unreplicated });
    });
  };
}

/** RFC 6455 §4.2.1: the upgrade a WebSocket handshake must be. */
function checkWebSocketUpgrade(headers: Record<string, string | string[] | undefined>): void {
  const one = (name: string) => (typeof headers[name] === 'string' ? (headers[name] as string) : undefined);
  if (one('upgrade')?.toLowerCase() !== 'websocket')
    fail('STRATA_BAD_REQUEST', 'the peer link upgrades to a WebSocket: send Upgrade: websocket');
  if (!/^[+/0-9A-Za-z]{22}==$/.test(one('sec-websocket-key') ?? ''))
    fail('STRATA_BAD_REQUEST', 'a WebSocket upgrade needs a Sec-WebSocket-Key of 16 bytes in base64');
  if (one('sec-websocket-version') !== '13')
    fail('STRATA_BAD_REQUEST', 'a WebSocket upgrade needs Sec-WebSocket-Version: 13');
}

/** Commit-notice and link counters: what the broadcast did, for the event stream and status. */
export function countersOf(cluster: ClusterService) {
  const replica = cluster.replica;
  return {
    ...replica.plumtree.counters,
    ...replica.delivery.counters,
    messagesSent: { ...replica.sent },
    refused: { ...cluster.counters.refused },
    blobsPulled: cluster.counters.blobsPulled,
    blobPullsFailed: cluster.counters.blobPullsFailed,
    ...cluster.backlog(),
    ...cluster.linkTraffic(),
  };
}
