import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminToken, type TempNode, tempNode } from '../../../test/support/temp-node.js';

interface BrowserClient {
  routes(base?: string): Promise<{ release: string; routes: Record<string, string> }>;
}

/** The browser client as a page loads it, run against a real node with Node's fetch. */
describe('strata-client.js', () => {
  let node: TempNode;
  let url: string;
  let release: string;
  let client: BrowserClient;

  async function api(method: string, path: string, body: string, contentType: string) {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': contentType },
      body,
    });
    expect(response.status, await response.clone().text()).toBe(201);
    return (await response.json()) as Record<string, string>;
  }

  beforeAll(async () => {
    node = tempNode();
    await node.app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(node.app.server.address() as AddressInfo).port}`;
    const routes: Record<string, string> = {};
    for (const path of ['/index.html', '/docs/index.html', '/docs/deep/page.html']) {
      routes[path] = (
        await api(
          'PUT',
          `/v1/buckets/application/keys/client${path}`,
          '<html><head></head></html>',
          'text/html',
        )
      ).version as string;
    }
    release = (await api('POST', '/v1/apps/site/releases', JSON.stringify({ routes }), 'application/json'))
      .release as string;
    const script = await (await fetch(`${url}/strata-client.js`)).text();
    const module = (await import(
      `data:text/javascript;base64,${Buffer.from(script).toString('base64')}`
    )) as {
      Strata: new (options: { url: string }) => BrowserClient;
    };
    client = new module.Strata({ url });
  });
  afterAll(async () => {
    await node.dispose();
  });

  it('routes() finds the route table of the page release from a page in any directory', async () => {
    for (const page of ['/apps/site/', '/apps/site/docs/', '/apps/site/docs/deep/page.html']) {
      const html = await (await fetch(`${url}${page}`)).text();
      const base = /<base href="([^"]+)">/.exec(html)?.[1] as string;
      const table = await client.routes(new URL(base, url).href);
      expect(table.release, page).toBe(release);
      expect(Object.keys(table.routes).sort()).toEqual([
        '/docs/deep/page.html',
        '/docs/index.html',
        '/index.html',
      ]);
    }
  });
});
