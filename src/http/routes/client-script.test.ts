import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminToken, type TempNode, tempNode } from '../../../test/support/temp-node.js';

interface BrowserClient {
  routes(base?: string): Promise<{ release: string; routes: Record<string, string> }>;
  put(
    bucket: string,
    key: unknown,
    body: unknown,
    options?: Record<string, unknown>,
  ): Promise<{ version: string }>;
  get(bucket: string, key: unknown, options?: Record<string, unknown>): Promise<{ text(): Promise<string> }>;
  delete(bucket: string, key: unknown, options?: Record<string, unknown>): Promise<unknown>;
  list(bucket: string, options?: Record<string, unknown>): Promise<unknown>;
}

type ClientClass = new (options: { url: string; token?: string }) => BrowserClient;

/** The browser client as a page loads it, run against a real node with Node's fetch. */
describe('strata-client.js', () => {
  let node: TempNode;
  let url: string;
  let release: string;
  let client: BrowserClient;
  let Strata: ClientClass;

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
    for (const path of ['/index.html', '/docs/index.html', '/docs/deep/page.html', '/own/index.html']) {
      // The page in own/ declares its own <base>: it is not pinned.
      const html = path.startsWith('/own/')
        ? '<html><head><base href="./"></head></html>'
        : '<html><head></head></html>';
      routes[path] = (await api('PUT', `/v1/buckets/application/keys/client${path}`, html, 'text/html'))
        .version as string;
    }
    release = (await api('POST', '/v1/apps/site/releases', JSON.stringify({ routes }), 'application/json'))
      .release as string;
    const script = await (await fetch(`${url}/strata-client.js`)).text();
    const module = (await import(
      `data:text/javascript;base64,${Buffer.from(script).toString('base64')}`
    )) as { Strata: ClientClass };
    Strata = module.Strata;
    client = new Strata({ url });
  });
  afterAll(async () => {
    await node.dispose();
  });

  /** What a call failed with: the client's StrataError, as a page would catch it. */
  async function refusal(call: Promise<unknown>): Promise<{ name: string; code: string; message: string }> {
    try {
      await call;
    } catch (error) {
      return error as { name: string; code: string; message: string };
    }
    throw new Error('the call succeeded');
  }

  it('refuses, before any request, keys no URL can carry and options it does not take', async () => {
    const writer = new Strata({ url, token: adminToken });
    await writer.put('notes', 'target', 'kept');
    for (const key of ['a/../target', 'x/./target', '..', '.', 123, 'lone \ud800']) {
      for (const call of [
        writer.put('notes', key, 'clobbered'),
        writer.get('notes', key),
        writer.delete('notes', key),
      ]) {
        const error = await refusal(call);
        expect(error.name, String(key)).toBe('StrataError');
        expect(error.code, String(key)).toBe('STRATA_INVALID_NAME');
      }
    }
    expect(await (await writer.get('notes', 'target')).text()).toBe('kept');
    for (const call of [
      writer.get('notes', 'target', { asof: '2000-01-01T00:00:00Z' }),
      writer.put('notes', 'target', 'x', { effectiveat: '2099-01-01T00:00:00Z' }),
      writer.list('notes', { cursor: 'x' }),
      writer.delete('notes', 'target', { ifmatch: '*' }),
    ]) {
      const error = await refusal(call);
      expect(error.code).toBe('STRATA_BAD_REQUEST');
      expect(error.message).toMatch(/has no option (asof|effectiveat|cursor|ifmatch)/);
    }
    expect(await (await writer.get('notes', 'target')).text()).toBe('kept');
  });

  it('sends ifMatch * as *, and an empty token as one (refused), not as none', async () => {
    const writer = new Strata({ url, token: adminToken });
    await writer.put('notes', 'guarded', 'one');
    await writer.put('notes', 'guarded', 'two', { ifMatch: '*' });
    expect((await refusal(writer.put('notes', 'absent', 'x', { ifMatch: '*' }))).code).toBe(
      'STRATA_PRECONDITION_FAILED',
    );
    expect((await refusal(new Strata({ url, token: '' }).get('notes', 'guarded'))).code).toBe(
      'STRATA_UNAUTHORIZED',
    );
  });

  it('routes() finds the route table of the page release from a page in any directory', async () => {
    for (const page of [
      '/apps/site/',
      '/apps/site/docs/',
      '/apps/site/docs/deep/page.html',
      '/apps/site/own/',
    ]) {
      const html = await (await fetch(`${url}${page}`)).text();
      const base = /<base href="([^"]+)">/.exec(html)?.[1] as string;
      // document.baseURI: the base resolved against the page's own URL.
      const table = await client.routes(new URL(base, `${url}${page}`).href);
      expect(table.release, page).toBe(release);
      expect(Object.keys(table.routes).sort()).toEqual([
        '/docs/deep/page.html',
        '/docs/index.html',
        '/index.html',
        '/own/index.html',
      ]);
    }
  });
});
