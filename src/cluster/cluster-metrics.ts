import { Gauge, type Registry } from 'prom-client';
import type { ClusterService } from './cluster-service.js';

/**
 * The cluster's figures in /metrics, read from the protocol when scraped (DESIGN §5 node signals).
 * Counters of the protocol only grow; they are exposed as `_total` gauges read at scrape time.
 */
export function registerClusterMetrics(registry: Registry, cluster: ClusterService): void {
  const gauge = (name: string, help: string, labelNames: string[], collect: (g: Gauge) => void) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        collect(this);
      },
    });
  gauge('strata_cluster_members', 'Members by state, as this node sees them', ['state'], (g) => {
    const counts = { alive: 0, suspect: 0, dead: 0 };
    for (const member of cluster.status()) counts[member.state] += 1;
    for (const [state, count] of Object.entries(counts)) g.set({ state }, count);
  });
  gauge('strata_cluster_links', 'Overlay links by Plumtree role over the trees kept', ['role'], (g) => {
    g.set({ role: 'eager' }, cluster.replica.plumtree.eager.size);
    g.set({ role: 'lazy' }, cluster.replica.plumtree.lazy.size);
  });
  gauge('strata_cluster_broadcast_trees', 'Broadcast trees kept, one per origin pruned for', [], (g) => {
    g.set(cluster.replica.plumtree.origins().length);
  });
  gauge('strata_cluster_messages_sent_total', 'Peer messages sent, by type', ['type'], (g) => {
    for (const [type, count] of Object.entries(cluster.replica.sent)) g.set({ type }, count);
  });
  gauge('strata_cluster_broadcast_total', 'Plumtree and delivery events', ['event'], (g) => {
    const counters = { ...cluster.replica.plumtree.counters, ...cluster.replica.delivery.counters };
    for (const [event, count] of Object.entries(counters)) g.set({ event }, count);
  });
  gauge('strata_cluster_peers_refused_total', 'Peer links or pulls refused, by reason', ['reason'], (g) => {
    for (const [reason, count] of Object.entries(cluster.counters.refused)) g.set({ reason }, count);
  });
  gauge('strata_cluster_link_bytes_total', 'Bytes of peer messages', ['direction'], (g) => {
    const { bytes } = cluster.linkTraffic();
    g.set({ direction: 'sent' }, bytes.sent);
    g.set({ direction: 'received' }, bytes.received);
  });
  gauge(
    'strata_cluster_link_frames_total',
    'WebSocket frames on peer links (each one message or a batch of them)',
    ['direction'],
    (g) => {
      const { frames } = cluster.linkTraffic();
      g.set({ direction: 'sent' }, frames.sent);
      g.set({ direction: 'received' }, frames.received);
    },
  );
  gauge(
    'strata_cluster_replication_delay_ms',
    'Mean replication delay of recent commits from other nodes',
    [],
    (g) => {
      g.set(cluster.replica.delivery.replicationDelayMs());
    },
  );
  gauge(
    'strata_cluster_clock_offset_ms',
    'Clock offset of each member (theirs minus ours): measured on a link, or summed along links',
    // Names are the operator's and may repeat; the id tells two members of one name apart.
    ['member', 'id'],
    (g) => {
      for (const member of cluster.status())
        if (!member.self && member.clockOffsetMs !== null)
          g.set({ member: member.name, id: member.id }, member.clockOffsetMs);
    },
  );
  gauge(
    'strata_cluster_pending_commits',
    'Commits received and waiting for a dependency or being applied',
    ['stage'],
    (g) => {
      const backlog = cluster.backlog();
      g.set({ stage: 'waiting' }, backlog.pending);
      g.set({ stage: 'applying' }, backlog.applying);
    },
  );
}
