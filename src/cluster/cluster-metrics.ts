import { Counter, Gauge, type Registry } from 'prom-client';
import type { ClusterService } from './cluster-service.js';

/**
 * The cluster's figures in /metrics, read from the protocol when scraped (DESIGN §5 node signals).
 * Counters of the protocol only grow; they are exposed as `_total` counters (as Prometheus names
 * them), set from the protocol's own counts at scrape time.
 */
export function registerClusterMetrics(registry: Registry, cluster: ClusterService): void {
  /** A metric set afresh from the protocol at each scrape (reset, then set). */
  function scraped<M extends Gauge | Counter>(metric: M, set: (metric: M) => void): M {
    return Object.assign(metric, {
      collect() {
        metric.reset();
        set(metric);
      },
    });
  }
  const gauge = (name: string, help: string, labelNames: string[], set: (g: Gauge) => void) =>
    scraped(new Gauge({ name, help, labelNames, registers: [registry] }), set);
  /** A counter whose value is the protocol's count (they start at 0 with the process). */
  const counter = (
    name: string,
    help: string,
    labelNames: string[],
    read: () => Array<[Record<string, string>, number]>,
  ) =>
    scraped(new Counter({ name, help, labelNames, registers: [registry] }), (c) => {
      for (const [labels, value] of read()) c.inc(labels, value);
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
  counter('strata_cluster_messages_sent_total', 'Peer messages sent, by type', ['type'], () =>
    Object.entries(cluster.replica.sent).map(([type, count]) => [{ type }, count]),
  );
  counter('strata_cluster_broadcast_total', 'Plumtree and delivery events', ['event'], () =>
    Object.entries({ ...cluster.replica.plumtree.counters, ...cluster.replica.delivery.counters }).map(
      ([event, count]) => [{ event }, count],
    ),
  );
  counter('strata_cluster_peers_refused_total', 'Peer links or pulls refused, by reason', ['reason'], () =>
    Object.entries(cluster.counters.refused).map(([reason, count]) => [{ reason }, count]),
  );
  counter('strata_cluster_link_bytes_total', 'Bytes of peer messages', ['direction'], () => {
    const { bytes } = cluster.linkTraffic();
    return [
      [{ direction: 'sent' }, bytes.sent],
      [{ direction: 'received' }, bytes.received],
    ];
  });
  counter(
    'strata_cluster_link_frames_total',
    'WebSocket frames on peer links (each one message or a batch of them)',
    ['direction'],
    () => {
      const { frames } = cluster.linkTraffic();
      return [
        [{ direction: 'sent' }, frames.sent],
        [{ direction: 'received' }, frames.received],
      ];
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
