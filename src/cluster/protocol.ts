import type { Commit } from '../core/commit.js';
import type { CommitId, NodeId } from '../core/ids.js';
import type { Envelope, Geo, MemberInfo, PeerMessage } from './messages.js';
import type { VersionVector } from './version-vector.js';

/**
 * The inputs and outputs of a node's cluster protocol (STYLE §3): the protocol reads an input and
 * returns outputs; a thin adapter owns sockets, timers and the store (`cluster-service.ts` in the
 * server, `src/sim/` in the simulator). Clock and randomness are injected with the options.
 */
export type ClusterInput =
  /** Time passed; the adapter calls this every `tickIntervalMs`. */
  | { type: 'tick' }
  /** Contact these URLs to join (also retried while the node has no links). */
  | { type: 'join'; urls: string[] }
  /** A link to a peer is authenticated and open; `peer` is what it said of itself in its hello. */
  | { type: 'link_up'; peer: MemberInfo }
  | { type: 'link_down'; peer: NodeId }
  /** A `connect` did not produce a link (refused, unreachable, no hello). */
  | { type: 'connect_failed'; url: string }
  | { type: 'message'; from: NodeId; message: PeerMessage }
  /** A local commit is durable: broadcast it. */
  | { type: 'committed'; envelope: Envelope }
  /** A remote commit handed out with `apply` is applied by the store (the server reports it before its sync). */
  | { type: 'applied'; id: CommitId }
  | { type: 'apply_failed'; id: CommitId; reason: string }
  /** Blobs asked for with `fetch_blobs` are durable here (ok) or could not be had. */
  | { type: 'blobs_fetched'; hashes: string[]; ok: boolean }
  /** Announce a graceful departure to every neighbour. */
  | { type: 'leave' };

export type ClusterOutput =
  | { type: 'send'; to: NodeId; message: PeerMessage }
  | { type: 'connect'; url: string; peer?: NodeId }
  | { type: 'disconnect'; peer: NodeId }
  /** Store this remote commit (its dependencies are present or handed out before it, in order). */
  | { type: 'apply'; envelope: Envelope; commit: Commit; from: NodeId }
  /** Pull these blobs from that peer by hash (streamed, in the server: HTTP). */
  | { type: 'fetch_blobs'; from: NodeId; hashes: string[] }
  | { type: 'event'; event: ClusterEvent };

export type ClusterEvent =
  | { type: 'new_neighbor'; member: NodeId; name: string; url: string }
  | { type: 'suspect'; member: NodeId; name: string; silentMs: number }
  | { type: 'alive'; member: NodeId; name: string }
  | { type: 'dead_neighbor'; member: NodeId; name: string; reason: 'silent' | 'left' }
  | { type: 'forgotten'; member: NodeId; name: string; reason: 'silent' | 'left' }
  | { type: 'clock_skew'; member: NodeId; name: string; offsetMs: number };

/** What the protocol asks of the node's storage. Synchronous reads; writes go out as `apply`. */
export interface ReplicaStorage {
  /** Origin → highest seq durable here. */
  revision(): VersionVector;
  hasCommit(id: CommitId): boolean;
  hasBlob(hash: string): boolean;
  /** A durable commit, with its small blobs inline. */
  envelope(id: CommitId): Envelope | undefined;
  /**
   * Durable commits that a node at `revision` lacks, in this node's log order (which is causal:
   * every commit comes after what it depends on), bounded by count and bytes (at least one).
   */
  missingFrom(
    revision: VersionVector,
    limits: { commitsMax: number; bytesMax: number },
  ): {
    envelopes: Envelope[];
    more: boolean;
  };
}

export interface Self {
  id: NodeId;
  name: string;
  url: string;
  geo?: Geo;
  incarnation: number;
}

export interface ClusterOptions {
  self: Self;
  storage: ReplicaStorage;
  /** Milliseconds since the epoch (wall clock). */
  now(): number;
  /** Uniform in [0, 1). */
  random(): number;
  /** This node's serving figures, for the gossiped node signals. */
  serving?(): { meanResponseMs: number; errorRate: number };
  timing?: Partial<ClusterTiming>;
}

/** Every interval, timeout and bound of the protocol, with the reason for its default. */
export interface ClusterTiming {
  /** The adapter ticks this often; graft timers and i_have batches are as fine as this. */
  tickIntervalMs: number;
  /** Heartbeat gossip and clock pings to each neighbour. */
  heartbeatIntervalMs: number;
  /** No heartbeat progress for this long: suspect (6 missed heartbeats). */
  suspectAfterMs: number;
  /** …and for this long: dead. Long enough that a GC pause or a busy disk does not evict a node. */
  deadAfterMs: number;
  /** A link on which nothing arrived for this long is dropped (heartbeats arrive every interval). */
  linkSilenceMs: number;
  /** Overlay degree `c`: each node keeps at least this many links, so one failure never splits the mesh. */
  degree: number;
  /** Links accepted at most; above `degree` extra links are dropped so the fan-out stays bounded. */
  linksMax: number;
  /** A connect that has not produced a link by then may be retried. */
  connectTimeoutMs: number;
  /** After a failed connect, the same URL is tried again no sooner than this. */
  connectRetryMs: number;
  /** This often one suspect or dead (not departed) member without a link, at random, is probed, so that partitions heal by themselves. */
  probeDeadIntervalMs: number;
  /**
   * A member silent this long is forgotten: no longer listed, gossiped or probed (a replaced node
   * does not stay in status for ever). Back again, it is a new member like any other.
   */
  forgetDeadAfterMs: number;
  /** A member that left is forgotten this long after its departure was heard (every node has heard it by then). */
  forgetLeftAfterMs: number;
  /** Plumtree timer 1: wait this long after an i_have for the eager copy before grafting. */
  graftTimeoutMs: number;
  /** Plumtree timer 2: graft the next announcer if the first graft brought nothing. */
  graftRetryMs: number;
  /** Anti-entropy round with one random neighbour. */
  antiEntropyIntervalMs: number;
  /** A sync request unanswered this long is given up (the next round asks again). */
  syncTimeoutMs: number;
  /** One sync batch: bounded so a catch-up never holds more than a batch in memory per peer. */
  syncBatchCommitsMax: number;
  syncBatchBytesMax: number;
  /** Commits waiting for a dependency; beyond this new ones are dropped (anti-entropy brings them back). */
  pendingCommitsMax: number;
  /** A waiting commit older than this is dropped: what it waits for is not coming from that peer. */
  pendingTtlMs: number;
  /** Clock offsets beyond this are flagged (--max-clock-skew-ms). */
  maxClockSkewMs: number;
}

export const defaultTiming: ClusterTiming = {
  tickIntervalMs: 20,
  heartbeatIntervalMs: 500,
  suspectAfterMs: 3_000,
  deadAfterMs: 10_000,
  linkSilenceMs: 4_000,
  // 4 rather than 3: in the simulated 50-node WAN (seeds 1–4, before compact member rows) it took the p99 replication delay from 1.70 s to 1.43 s.
  degree: 4,
  linksMax: 8,
  connectTimeoutMs: 5_000,
  connectRetryMs: 1_000,
  probeDeadIntervalMs: 2_000,
  forgetDeadAfterMs: 24 * 60 * 60_000,
  forgetLeftAfterMs: 60 * 60_000,
  graftTimeoutMs: 150,
  graftRetryMs: 200,
  antiEntropyIntervalMs: 1_000,
  syncTimeoutMs: 5_000,
  syncBatchCommitsMax: 1000,
  syncBatchBytesMax: 1024 * 1024,
  pendingCommitsMax: 20_000,
  pendingTtlMs: 60_000,
  maxClockSkewMs: 500,
};
