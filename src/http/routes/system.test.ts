import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { auth, type TempNode, tempNode } from '../../../test/support/temp-node.js';

let node: TempNode;
beforeEach(() => {
  node = tempNode();
});
afterEach(async () => {
  await node.dispose();
});

/** The value of one sample line of the Prometheus text format, or undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = match[2] ?? '';
    if (Object.entries(labels).every(([label, value]) => present.includes(`${label}="${value}"`))) {
      return Number(match[3]);
    }
  }
  return undefined;
}

describe('GET /health', () => {
  it('answers ok with the node id, without a token', async () => {
    const response = await node.app.inject({ url: '/health' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ok', node: node.store.nodeId });
    expect(node.store.nodeId).toMatch(/^[0-9a-f]{16}$/);
    expect((await node.app.inject({ method: 'HEAD', url: '/health' })).statusCode).toBe(200);
  });
});

describe('GET /metrics', () => {
  it('exposes the Prometheus metrics of the node', async () => {
    const write = await node.app.inject({
      method: 'PUT',
      url: '/v1/buckets/b/keys/k',
      headers: auth,
      payload: 'value',
    });
    expect(write.statusCode).toBe(201);
    await node.app.inject({ url: '/v1/buckets/b/keys/missing', headers: auth });

    const response = await node.app.inject({ url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = response.body;
    for (const name of [
      'strata_http_requests_total',
      'strata_http_request_duration_seconds',
      'strata_commits_total',
      'strata_fsync_duration_seconds',
      'strata_log_bytes',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(sample(text, 'strata_commits_total')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'strata_fsync_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'strata_log_bytes')).toBeGreaterThan(0);
    expect(
      sample(text, 'strata_http_requests_total', {
        method: 'PUT',
        route: '/v1/buckets/:bucket/keys/*',
        status: '201',
      }),
    ).toBe(1);
    expect(
      sample(text, 'strata_http_requests_total', {
        method: 'GET',
        route: '/v1/buckets/:bucket/keys/*',
        status: '404',
      }),
    ).toBe(1);
    expect(
      sample(text, 'strata_http_request_duration_seconds_count', {
        method: 'PUT',
        route: '/v1/buckets/:bucket/keys/*',
      }),
    ).toBe(1);
  });

  it('counts commits as they are made durable', async () => {
    const before = sample((await node.app.inject({ url: '/metrics' })).body, 'strata_commits_total') ?? 0;
    for (let index = 0; index < 3; index += 1) {
      await node.app.inject({
        method: 'PUT',
        url: `/v1/buckets/b/keys/k${index}`,
        headers: auth,
        payload: 'v',
      });
    }
    const after = sample((await node.app.inject({ url: '/metrics' })).body, 'strata_commits_total');
    expect(after).toBe(before + 3);
  });
});

describe('unknown routes', () => {
  it('answer 404 with a Strata error body', async () => {
    for (const [method, url] of [
      ['GET', '/'],
      ['GET', '/v2/buckets'],
      ['GET', '/v1/nothing'],
      ['PATCH', '/v1/buckets/b/keys/k'],
      ['DELETE', '/v1/buckets/b/keys'],
      ['POST', '/health'],
      ['PUT', '/v1/commits'],
    ] as const) {
      const response = await node.app.inject({ method, url, headers: auth });
      expect(response.statusCode, `${method} ${url}`).toBe(404);
      expect(response.json()).toMatchObject({
        error: { code: 'STRATA_NOT_FOUND', message: expect.any(String) },
      });
    }
  });
});
