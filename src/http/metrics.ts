import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Prometheus metrics of one node. A registry per node, so several nodes can live in one process (tests). */
export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'strata_http_requests_total',
    help: 'HTTP requests by method, route and status code',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly requestSeconds = new Histogram({
    name: 'strata_http_request_duration_seconds',
    help: 'HTTP request latency by method and route',
    labelNames: ['method', 'route'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [this.registry],
  });
  readonly commits = new Counter({
    name: 'strata_commits_total',
    help: 'Commits made durable on this node',
    registers: [this.registry],
  });
  readonly blobsDamaged = new Counter({
    name: 'strata_blobs_damaged_total',
    help: 'Blob copies found missing or not hashing to their id when read (each was set aside)',
    registers: [this.registry],
  });
  readonly fsyncSeconds = new Histogram({
    name: 'strata_fsync_duration_seconds',
    help: 'Time of each group-commit fsync',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
    registers: [this.registry],
  });
  readonly batchCommits = new Histogram({
    name: 'strata_group_commit_batch_commits',
    help: 'Commits sharing one fsync',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000],
    registers: [this.registry],
  });
  readonly checkpointSeconds = new Histogram({
    name: 'strata_checkpoint_duration_seconds',
    help: 'Time of each WAL checkpoint on the database worker (off the event loop)',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly searchMergeSeconds = new Histogram({
    name: 'strata_search_merge_step_seconds',
    help: 'Time of each step of idle search-index merging on the database worker (writes wait for a step)',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [this.registry],
  });
  readonly logBytes = new Gauge({
    name: 'strata_log_bytes',
    help: 'Size of the database holding the log and derived state, in bytes',
    registers: [this.registry],
  });

  /** Exponentially weighted means of response time and of the 5xx share: the node signals peers gossip. */
  private meanResponseMs = 0;
  private errorRate = 0;

  /** Weight of each new response: the figures follow roughly the last few hundred responses. */
  private static readonly servingWeight = 0.01;

  onResponse(milliseconds: number, status: number): void {
    const weight = Metrics.servingWeight;
    this.meanResponseMs += weight * (milliseconds - this.meanResponseMs);
    this.errorRate += weight * ((status >= 500 ? 1 : 0) - this.errorRate);
  }

  serving(): { meanResponseMs: number; errorRate: number } {
    return { meanResponseMs: this.meanResponseMs, errorRate: this.errorRate };
  }

  onSync(seconds: number, commits: number): void {
    this.fsyncSeconds.observe(seconds);
    this.batchCommits.observe(commits);
    this.commits.inc(commits);
  }
}
