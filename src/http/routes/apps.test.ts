import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { expectError } from '../../../test/support/api.js';
import { auth, type TempNode, tempNodesPerTest } from '../../../test/support/temp-node.js';
import { ManualClock } from '../../core/clock.js';
import type { StrataNode } from '../../node.js';

const start = Date.UTC(2030, 0, 1);
const minute = 60_000;
const hour = 60 * minute;
const iso = (ms: number) => new Date(ms).toISOString();
const immutable = 'public, max-age=31536000, immutable';

type Inject = StrataNode['app'];

const startNode = tempNodesPerTest();

/** A node for this test on a manual clock, returned with the clock. */
function node(clock = new ManualClock(start)): { node: TempNode; clock: ManualClock } {
  return { node: startNode({ clock }), clock };
}

async function putFile(app: Inject, bucket: string, key: string, body: string | Buffer, contentType: string) {
  const response = await app.inject({
    method: 'PUT',
    url: `/v1/buckets/${bucket}/keys/${key}`,
    headers: { ...auth, 'content-type': contentType },
    payload: body,
  });
  expect(response.statusCode, response.body).toBe(201);
  return (response.json() as { version: string }).version;
}

async function createRelease(app: Inject, name: string, body: Record<string, unknown>): Promise<string> {
  const response = await app.inject({
    method: 'POST',
    url: `/v1/apps/${name}/releases`,
    headers: { ...auth, 'content-type': 'application/json' },
    payload: JSON.stringify(body),
  });
  expect(response.statusCode, response.body).toBe(201);
  return (response.json() as { release: string }).release;
}

const indexHtml =
  '<!doctype html><html><head><title>site</title></head><body><script type="module" src="js/app.js"></script></body></html>';
const binary = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 256));

interface Site {
  release: string;
  versions: Record<string, string>;
}

/** A small app with pages in two directories, a script, binary data and a page with its own <base>. */
async function publishSite(app: Inject, name = 'site', extra: Record<string, unknown> = {}): Promise<Site> {
  const files: Array<[string, string, string | Buffer, string]> = [
    ['/index.html', 'application', indexHtml, 'text/html; charset=utf-8'],
    ['/js/app.js', 'application', 'export const app = 1;\n', 'text/javascript; charset=utf-8'],
    ['/docs/index.html', 'application', '<html><head></head><body>docs home</body></html>', 'text/html'],
    ['/docs/page.html', 'application', '<html><head><title>p</title></head>page</html>', 'text/html'],
    ['/own-base.html', 'application', '<html><head><base href="/cdn/"></head></html>', 'text/html'],
    ['/data.bin', 'objects', binary, 'application/x-test-data'],
    ['/café.txt', 'objects', 'accented', 'text/plain; charset=utf-8'],
  ];
  const versions: Record<string, string> = {};
  for (const [path, bucket, body, contentType] of files) {
    versions[path] = await putFile(app, bucket, `${name}${encodeURI(path)}`, body, contentType);
  }
  const release = await createRelease(app, name, { routes: versions, ...extra });
  return { release, versions };
}

/** Releases `site` again with /js/app.js changed to `app = 2`, every other route as in `first`. */
async function releaseChangedScript(app: Inject, first: Site, extra: Record<string, unknown> = {}) {
  const changed = await putFile(
    app,
    'application',
    'site/js/app.js',
    'export const app = 2;\n',
    'text/javascript',
  );
  return createRelease(app, 'site', { routes: { ...first.versions, '/js/app.js': changed }, ...extra });
}

describe('GET /apps/{app}/…', () => {
  it('serves the entry document at /, pinned to its release with <base>', async () => {
    const { node: n } = node();
    const { release, versions } = await publishSite(n.app);
    const response = await n.app.inject({ url: '/apps/site/' });
    expect(response.statusCode, response.body).toBe(200);
    const expected = indexHtml.replace('<head>', `<head><base href="/apps/site/@${release}/">`);
    expect(response.body).toBe(expected);
    expect(response.headers).toMatchObject({
      'content-type': 'text/html; charset=utf-8',
      'content-length': String(Buffer.byteLength(expected)),
      etag: `"${release}:${versions['/index.html']}"`,
      'strata-release': release,
      'cache-control': 'no-cache',
    });
    const named = await n.app.inject({ url: '/apps/site/index.html' });
    expect(named.body).toBe(expected);
  });

  it('serves other files with their stored Content-Type and their version as ETag', async () => {
    const { node: n } = node();
    const { release, versions } = await publishSite(n.app);
    const script = await n.app.inject({ url: '/apps/site/js/app.js?cache=bust' });
    expect(script.statusCode).toBe(200);
    expect(script.body).toBe('export const app = 1;\n');
    expect(script.headers).toMatchObject({
      'content-type': 'text/javascript; charset=utf-8',
      etag: `"${versions['/js/app.js']}"`,
      'strata-release': release,
      'cache-control': 'no-cache',
    });
    const data = await n.app.inject({ url: '/apps/site/data.bin' });
    expect(data.headers['content-type']).toBe('application/x-test-data');
    expect(data.rawPayload.equals(binary)).toBe(true);
    const accented = await n.app.inject({ url: '/apps/site/caf%C3%A9.txt' });
    expect(accented.statusCode, accented.body).toBe(200);
    expect(accented.body).toBe('accented');
  });

  it('pins each HTML document to its own directory, and leaves an explicit <base> alone', async () => {
    const { node: n } = node();
    const { release } = await publishSite(n.app);
    const page = await n.app.inject({ url: '/apps/site/docs/page.html' });
    expect(page.body).toBe(
      `<html><head><base href="/apps/site/@${release}/docs/"><title>p</title></head>page</html>`,
    );
    const dirIndex = await n.app.inject({ url: '/apps/site/docs/' });
    expect(dirIndex.statusCode).toBe(200);
    expect(dirIndex.body).toBe(
      `<html><head><base href="/apps/site/@${release}/docs/"></head><body>docs home</body></html>`,
    );
    const own = await n.app.inject({ url: '/apps/site/own-base.html' });
    expect(own.body).toBe('<html><head><base href="/cdn/"></head></html>');
  });

  it('answers 304 to a matching If-None-Match, and HEAD with headers only', async () => {
    const { node: n } = node();
    const { versions } = await publishSite(n.app);
    const etag = `"${versions['/js/app.js']}"`;
    const cached = await n.app.inject({ url: '/apps/site/js/app.js', headers: { 'if-none-match': etag } });
    expect(cached.statusCode).toBe(304);
    expect(cached.body).toBe('');

    const head = await n.app.inject({ method: 'HEAD', url: '/apps/site/' });
    expect(head.statusCode).toBe(200);
    expect(head.body).toBe('');
    const get = await n.app.inject({ url: '/apps/site/' });
    expect(head.headers['content-length']).toBe(get.headers['content-length']);
    expect(head.headers.etag).toBe(get.headers.etag);
  });

  it('serves byte ranges (206) and refuses unsatisfiable ones (416)', async () => {
    const { node: n } = node();
    await publishSite(n.app);
    const part = await n.app.inject({ url: '/apps/site/data.bin', headers: { range: 'bytes=10-19' } });
    expect(part.statusCode).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 10-19/${binary.length}`);
    expect(part.headers['content-length']).toBe('10');
    expect(part.rawPayload.equals(binary.subarray(10, 20))).toBe(true);

    const suffix = await n.app.inject({ url: '/apps/site/data.bin', headers: { range: 'bytes=-5' } });
    expect(suffix.statusCode).toBe(206);
    expect(suffix.rawPayload.equals(binary.subarray(995))).toBe(true);

    const html = await n.app.inject({ url: '/apps/site/', headers: { range: 'bytes=0-14' } });
    expect(html.statusCode).toBe(206);
    expect(html.body).toBe('<!doctype html>');

    const outside = await n.app.inject({ url: '/apps/site/data.bin', headers: { range: 'bytes=5000-' } });
    expectError(outside, 416, 'STRATA_RANGE_NOT_SATISFIABLE');
    expect(outside.headers['content-range']).toBe(`bytes */${binary.length}`);
  });

  it('answers 404 for unrouted paths, unknown apps and apps with nothing in effect', async () => {
    const { node: n } = node();
    await publishSite(n.app);
    expectError(await n.app.inject({ url: '/apps/site/missing.js' }), 404, 'STRATA_NOT_FOUND');
    expectError(await n.app.inject({ url: '/apps/site/some/route' }), 404, 'STRATA_NOT_FOUND');
    expectError(await n.app.inject({ url: '/apps/nothing/' }), 404, 'STRATA_NOT_FOUND');
    const version = await putFile(n.app, 'objects', 'later.txt', 'later', 'text/plain');
    await createRelease(n.app, 'later', {
      routes: { '/later.txt': version },
      effectiveAt: iso(start + hour),
    });
    expectError(await n.app.inject({ url: '/apps/later/later.txt' }), 404, 'STRATA_NOT_FOUND');
    expectError(await n.app.inject({ url: '/apps/Bad/' }), 400, 'STRATA_INVALID_NAME');
  });

  it('refuses a malformed percent-encoding with a Strata error', async () => {
    const { node: n } = node();
    await publishSite(n.app);
    for (const url of ['/apps/site/%E0%A4%A', '/apps/site/100%', '/apps/site/%ZZ.js']) {
      expectError(await n.app.inject({ url }), 400, 'STRATA_BAD_REQUEST');
    }
  });

  it('needs no token, and accepts one', async () => {
    const { node: n } = node();
    const { release } = await publishSite(n.app);
    for (const url of ['/apps/site/', `/apps/site/@${release}/js/app.js`, '/apps/site/_routes.json']) {
      expect((await n.app.inject({ url })).statusCode, url).toBe(200);
      expect((await n.app.inject({ url, headers: auth })).statusCode, url).toBe(200);
    }
  });
});

describe('compression', () => {
  const script = `${Array.from({ length: 200 }, (_, i) => `export const value${i} = ${i};`).join('\n')}\n`;
  const page = `<!doctype html><html><head><title>t</title></head><body>${'<p>paragraph</p>'.repeat(100)}</body></html>`;

  async function publishText(app: Inject): Promise<{ release: string; script: string; page: string }> {
    const versions = {
      '/app.js': await putFile(app, 'application', 'text/app.js', script, 'text/javascript'),
      '/index.html': await putFile(app, 'application', 'text/index.html', page, 'text/html'),
      '/small.css': await putFile(app, 'application', 'text/small.css', 'body{}', 'text/css'),
      '/data.bin': await putFile(app, 'objects', 'text/data.bin', Buffer.alloc(4096, 7), 'image/png'),
    };
    const release = await createRelease(app, 'text', { routes: versions });
    return { release, script: versions['/app.js'], page: versions['/index.html'] };
  }

  it('serves text as brotli or gzip, as Accept-Encoding asks, with an ETag per coding', async () => {
    const { node: n } = node();
    const { release, script: version, page: pageVersion } = await publishText(n.app);
    const br = await n.app.inject({
      url: '/apps/text/app.js',
      headers: { 'accept-encoding': 'gzip, deflate, br' },
    });
    expect(br.headers).toMatchObject({
      'content-encoding': 'br',
      vary: 'Accept-Encoding',
      etag: `"${version}-br"`,
      'content-length': String(br.rawPayload.length),
    });
    expect(br.rawPayload.length).toBeLessThan(Buffer.byteLength(script) / 2);
    expect(brotliDecompressSync(br.rawPayload).toString()).toBe(script);

    const gz = await n.app.inject({
      url: '/apps/text/app.js',
      headers: { 'accept-encoding': 'gzip, br;q=0' },
    });
    expect(gz.headers).toMatchObject({ 'content-encoding': 'gzip', etag: `"${version}-gzip"` });
    expect(gunzipSync(gz.rawPayload).toString()).toBe(script);

    const html = await n.app.inject({ url: '/apps/text/', headers: { 'accept-encoding': '*' } });
    expect(html.headers).toMatchObject({ 'content-encoding': 'br', etag: `"${release}:${pageVersion}-br"` });
    expect(brotliDecompressSync(html.rawPayload).toString()).toContain(
      `<base href="/apps/text/@${release}/">`,
    );

    const revalidated = await n.app.inject({
      url: '/apps/text/app.js',
      headers: { 'accept-encoding': 'br', 'if-none-match': `"${version}-br"` },
    });
    expect(revalidated.statusCode).toBe(304);
    expect(revalidated.headers).toMatchObject({ etag: `"${version}-br"`, vary: 'Accept-Encoding' });
    // The identity ETag does not validate the brotli copy: they are different bytes.
    const other = await n.app.inject({
      url: '/apps/text/app.js',
      headers: { 'accept-encoding': 'br', 'if-none-match': `"${version}"` },
    });
    expect(other.statusCode).toBe(200);

    const head = await n.app.inject({
      method: 'HEAD',
      url: '/apps/text/app.js',
      headers: { 'accept-encoding': 'br' },
    });
    expect(head.headers['content-length']).toBe(br.headers['content-length']);
    expect(head.headers['content-encoding']).toBe('br');
    expect(head.rawPayload.length).toBe(0);
    // A HEAD answered 304 states the length of the coded 200, or none before the copy is made.
    const headAgain = (etag: string) =>
      n.app.inject({
        method: 'HEAD',
        url: '/apps/text/app.js',
        headers: { 'accept-encoding': 'br', 'if-none-match': etag },
      });
    const cachedHead = await headAgain(`"${version}-br"`);
    expect(cachedHead.statusCode).toBe(304);
    expect(cachedHead.headers['content-length']).toBe(br.headers['content-length']);
    const { node: fresh } = node();
    const other2 = await publishText(fresh.app);
    const unmade = await fresh.app.inject({
      method: 'HEAD',
      url: '/apps/text/app.js',
      headers: { 'accept-encoding': 'br', 'if-none-match': `"${other2.script}-br"` },
    });
    expect(unmade.statusCode).toBe(304);
    expect(unmade.headers['content-length']).not.toBe(String(Buffer.byteLength(script)));
  });

  it('serves the stored bytes without Accept-Encoding, for ranges, refused codings, small files and media', async () => {
    const { node: n } = node();
    const { script: version } = await publishText(n.app);
    for (const headers of [
      {},
      { 'accept-encoding': 'identity' },
      { 'accept-encoding': 'br;q=0, gzip;q=0' },
      { 'accept-encoding': '*;q=0' },
    ]) {
      const plain = await n.app.inject({ url: '/apps/text/app.js', headers });
      expect(plain.headers['content-encoding'], JSON.stringify(headers)).toBeUndefined();
      expect(plain.headers).toMatchObject({ etag: `"${version}"`, vary: 'Accept-Encoding' });
      expect(plain.body).toBe(script);
    }
    const range = await n.app.inject({
      url: '/apps/text/app.js',
      headers: { 'accept-encoding': 'br', range: 'bytes=0-5' },
    });
    expect(range.statusCode).toBe(206);
    expect(range.headers['content-encoding']).toBeUndefined();
    expect(range.body).toBe(script.slice(0, 6));
    for (const path of ['/small.css', '/data.bin']) {
      const response = await n.app.inject({ url: `/apps/text${path}`, headers: { 'accept-encoding': 'br' } });
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-encoding'], path).toBeUndefined();
      expect(response.headers.vary, path).toBeUndefined();
    }
  });
});

describe('pinning HTML', () => {
  async function page(n: TempNode, path: string, body: string | Buffer, contentType = 'text/html') {
    const version = await putFile(n.app, 'application', `pin${encodeURI(path)}`, body, contentType);
    const release = await createRelease(n.app, 'pin', { routes: { [path]: version } });
    return { release, version };
  }

  it('keeps the bytes of a page that is not UTF-8, adding only the <base>', async () => {
    const { node: n } = node();
    const latin1 = Buffer.from('<html><head><title>caf\xe9</title></head></html>', 'latin1');
    const { release } = await page(n, '/index.html', latin1, 'text/html; charset=iso-8859-1');
    const response = await n.app.inject({ url: '/apps/pin/' });
    expect(
      response.rawPayload.equals(
        Buffer.concat([
          Buffer.from('<html><head>'),
          Buffer.from(`<base href="/apps/pin/@${release}/">`),
          latin1.subarray(12),
        ]),
      ),
    ).toBe(true);
  });

  it('percent-encodes the directory in the <base>, and reads only an href attribute as its own', async () => {
    const { node: n } = node();
    const { release } = await page(n, '/50%off/a b/index.html', '<html><head></head></html>');
    const response = await n.app.inject({ url: '/apps/pin/50%25off/a%20b/' });
    expect(response.body).toContain(`<base href="/apps/pin/@${release}/50%25off/a%20b/">`);
    await page(n, '/data-href.html', '<html><head><base data-href="x"></head></html>');
    expect((await n.app.inject({ url: '/apps/pin/data-href.html' })).body).toContain(
      '<base href="/apps/pin/@',
    );
  });

  it('pins a page over 8 MiB as it streams, with the length and ETag of what it sends', async () => {
    const { node: n } = node();
    const body = `<!doctype html><html><head><title>huge</title></head><body>${'x'.repeat(9 * 1024 * 1024)}</body></html>`;
    const { release, version } = await page(n, '/huge.html', body);
    const response = await n.app.inject({ url: '/apps/pin/huge.html', headers: { 'accept-encoding': 'br' } });
    const tag = `<base href="/apps/pin/@${release}/">`;
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-encoding']).toBeUndefined();
    expect(response.headers['content-length']).toBe(String(body.length + tag.length));
    expect(response.headers.etag).toBe(`"${release}:${version}"`);
    expect(response.body.slice(0, 100)).toBe(
      `<!doctype html><html><head>${tag}<title>huge</title>`.slice(0, 100),
    );
    expect(response.body.length).toBe(body.length + tag.length);
    expect(response.body.endsWith('</body></html>')).toBe(true);
    const cached = await n.app.inject({
      method: 'HEAD',
      url: '/apps/pin/huge.html',
      headers: { 'if-none-match': response.headers.etag as string },
    });
    expect(cached.statusCode).toBe(304);
  });
});

describe('single-page apps', () => {
  it('serves the entry document for paths without an extension or that accept HTML', async () => {
    const { node: n } = node();
    const { release } = await publishSite(n.app, 'site', { spa: true });
    for (const url of ['/apps/site/users/42', '/apps/site/deep/path/', '/apps/site/doc']) {
      const response = await n.app.inject({ url });
      expect(response.statusCode, url).toBe(200);
      expect(response.body, url).toContain(`<base href="/apps/site/@${release}/">`);
      expect(response.body, url).toContain('<title>site</title>');
    }
    expectError(await n.app.inject({ url: '/apps/site/missing.png' }), 404, 'STRATA_NOT_FOUND');
    const accepting = await n.app.inject({
      url: '/apps/site/report.pdf',
      headers: { accept: 'text/html,application/xhtml+xml;q=0.9' },
    });
    expect(accepting.statusCode).toBe(200);
    expect(accepting.body).toContain('<title>site</title>');
    // What a path with an extension gets depends on Accept: caches are told so.
    expect(accepting.headers.vary).toBe('Accept');
    const refusing = await n.app.inject({
      url: '/apps/site/report.pdf',
      headers: { accept: 'text/html;q=0, application/pdf' },
    });
    expectError(refusing, 404, 'STRATA_NOT_FOUND');
    expect(refusing.headers.vary).toBe('Accept');
    expect((await n.app.inject({ url: `/apps/site/@${release}/report.pdf` })).headers.vary).toBe('Accept');
    // Routed files are still served as themselves, and a routed directory is one.
    expect((await n.app.inject({ url: '/apps/site/js/app.js' })).body).toBe('export const app = 1;\n');
    expect((await n.app.inject({ url: '/apps/site/docs' })).headers.location).toBe('/apps/site/docs/');
    expect((await n.app.inject({ url: '/apps/site/docs/page.html' })).body).toContain('page');
  });

  it('serves a chosen entry document at / and for SPA paths', async () => {
    const { node: n } = node();
    const shell = await putFile(n.app, 'application', 'app/shell.html', '<head></head>shell', 'text/html');
    const release = await createRelease(n.app, 'app', {
      routes: { '/app/shell.html': shell },
      entry: '/app/shell.html',
      spa: true,
    });
    const root = await n.app.inject({ url: '/apps/app/' });
    expect(root.body).toBe(`<head><base href="/apps/app/@${release}/app/"></head>shell`);
    const deep = await n.app.inject({ url: '/apps/app/settings/profile' });
    expect(deep.body).toBe(root.body);
  });
});

describe('pinned URLs /apps/{app}/@{release}/…', () => {
  it('serve exactly that release, cached as immutable', async () => {
    const { node: n, clock } = node();
    const first = await publishSite(n.app);
    clock.advance(minute);
    const second = await releaseChangedScript(n.app, first);

    const old = await n.app.inject({ url: `/apps/site/@${first.release}/js/app.js` });
    expect(old.statusCode).toBe(200);
    expect(old.body).toBe('export const app = 1;\n');
    expect(old.headers).toMatchObject({
      'cache-control': immutable,
      'strata-release': first.release,
      etag: `"${first.versions['/js/app.js']}"`,
    });
    const current = await n.app.inject({ url: '/apps/site/js/app.js' });
    expect(current.body).toBe('export const app = 2;\n');
    expect(current.headers['strata-release']).toBe(second);

    for (const url of [`/apps/site/@${first.release}/`, `/apps/site/@${first.release}`]) {
      const entry = await n.app.inject({ url });
      expect(entry.statusCode, url).toBe(200);
      expect(entry.body, url).toContain(`<base href="/apps/site/@${first.release}/">`);
      expect(entry.headers['cache-control'], url).toBe(immutable);
    }
  });

  it('preview a scheduled release uncached, and never serve a cancelled one', async () => {
    const { node: n, clock } = node();
    const first = await publishSite(n.app);
    const kept = await releaseChangedScript(n.app, first, { effectiveAt: iso(start + hour) });
    const dropped = await releaseChangedScript(n.app, first, { effectiveAt: iso(start + 2 * hour) });

    for (const release of [kept, dropped]) {
      const preview = await n.app.inject({ url: `/apps/site/@${release}/js/app.js` });
      expect(preview.statusCode).toBe(200);
      expect(preview.body).toBe('export const app = 2;\n');
      expect(preview.headers['cache-control']).toBe('no-cache');
    }
    const cancelled = await n.app.inject({
      method: 'DELETE',
      url: `/v1/apps/site/releases/${dropped}`,
      headers: auth,
    });
    expect(cancelled.statusCode, cancelled.body).toBe(200);
    for (const path of ['js/app.js', '', '_routes.json']) {
      const gone = await n.app.inject({ url: `/apps/site/@${dropped}/${path}` });
      expectError(gone, 404, 'STRATA_NOT_FOUND');
      expect(gone.json().error.message).toBe(
        `release ${dropped} of app site was cancelled; it is not served`,
      );
    }
    // The release kept is immutable from its effective time on.
    clock.set(start + hour);
    const active = await n.app.inject({ url: `/apps/site/@${kept}/js/app.js` });
    expect(active.headers['cache-control']).toBe(immutable);
    clock.set(start + 3 * hour);
    expect((await n.app.inject({ url: '/apps/site/js/app.js' })).headers['strata-release']).toBe(kept);
  });

  it('answer 404 for unknown releases and releases of other apps', async () => {
    const { node: n } = node();
    const { release, versions } = await publishSite(n.app);
    const other = await createRelease(n.app, 'other', { routes: { '/a.js': versions['/js/app.js'] } });
    expectError(await n.app.inject({ url: `/apps/site/@${other}/a.js` }), 404, 'STRATA_NOT_FOUND');
    expectError(await n.app.inject({ url: `/apps/site/@${'0'.repeat(64)}.0/` }), 404, 'STRATA_NOT_FOUND');
    expectError(await n.app.inject({ url: '/apps/site/@latest/' }), 404, 'STRATA_NOT_FOUND');
    expectError(
      await n.app.inject({ url: `/apps/site/@${versions['/js/app.js']}/js/app.js` }),
      404,
      'STRATA_NOT_FOUND',
    );
    expectError(await n.app.inject({ url: `/apps/site/@${release}/missing.js` }), 404, 'STRATA_NOT_FOUND');
    const blank = await n.app.inject({ url: '/apps/site/@/js/app.js' });
    expectError(blank, 404, 'STRATA_NOT_FOUND');
    expect(blank.json().error.message).toBe('a pinned URL names its release: /@<release>/<path> of app site');
  });

  it('serve the route table at _routes.json', async () => {
    const { node: n } = node();
    const { release, versions } = await publishSite(n.app, 'site', { message: 'v1' });
    const pinned = await n.app.inject({ url: `/apps/site/@${release}/_routes.json` });
    expect(pinned.statusCode).toBe(200);
    expect(pinned.headers['content-type']).toMatch(/^application\/json/);
    expect(pinned.headers['cache-control']).toBe(immutable);
    expect(pinned.headers.etag).toBe(`"${release}"`);
    expect(pinned.json()).toEqual({
      release,
      effectiveAt: iso(start),
      routes: versions,
      entry: '/index.html',
      message: 'v1',
    });
    const current = await n.app.inject({ url: '/apps/site/_routes.json' });
    expect(current.json()).toEqual(pinned.json());
    expect(current.headers['cache-control']).toBe('no-cache');
  });
});

describe('time', () => {
  it('serves the release in effect at ?at=', async () => {
    const { node: n, clock } = node();
    const first = await publishSite(n.app);
    clock.advance(hour);
    const second = await releaseChangedScript(n.app, first);

    const then = await n.app.inject({ url: `/apps/site/js/app.js?at=${iso(start + minute)}` });
    expect(then.body).toBe('export const app = 1;\n');
    expect(then.headers['strata-release']).toBe(first.release);
    const thenPage = await n.app.inject({ url: `/apps/site/?at=${start + minute}` });
    expect(thenPage.body).toContain(`<base href="/apps/site/@${first.release}/">`);
    const now = await n.app.inject({ url: `/apps/site/js/app.js?at=${iso(start + hour)}` });
    expect(now.headers['strata-release']).toBe(second);
    expectError(await n.app.inject({ url: `/apps/site/?at=${iso(start - 1)}` }), 404, 'STRATA_NOT_FOUND');
    expectError(await n.app.inject({ url: '/apps/site/?at=yesterday' }), 400, 'STRATA_INVALID_TIME');
    expectError(
      await n.app.inject({ url: '/apps/site/?at=2030-02-30T00:00:00Z' }),
      400,
      'STRATA_INVALID_TIME',
    );
  });

  it('switches to a scheduled release at its effective time, with no timer involved', async () => {
    const { node: n, clock } = node();
    const first = await publishSite(n.app);
    const switchAt = start + 6 * hour;
    const second = await releaseChangedScript(n.app, first, { effectiveAt: iso(switchAt) });

    clock.set(switchAt - 1);
    const before = await n.app.inject({ url: '/apps/site/js/app.js' });
    expect(before.body).toBe('export const app = 1;\n');
    expect(before.headers['strata-release']).toBe(first.release);
    expect((await n.app.inject({ url: '/apps/site/' })).body).toContain(`@${first.release}/`);

    clock.set(switchAt);
    const after = await n.app.inject({ url: '/apps/site/js/app.js' });
    expect(after.body).toBe('export const app = 2;\n');
    expect(after.headers['strata-release']).toBe(second);
    expect((await n.app.inject({ url: '/apps/site/' })).body).toContain(`@${second}/`);

    clock.set(switchAt + 24 * hour);
    expect((await n.app.inject({ url: '/apps/site/js/app.js' })).headers['strata-release']).toBe(second);
  });
});

describe('other app URLs', () => {
  it('redirects /apps/{app} to /apps/{app}/, keeping the query', async () => {
    const { node: n } = node();
    const plain = await n.app.inject({ url: '/apps/site' });
    expect(plain.statusCode).toBe(301);
    expect(plain.headers.location).toBe('/apps/site/');
    const withQuery = await n.app.inject({ url: '/apps/site?at=2030-01-01T00:00:00Z' });
    expect(withQuery.statusCode).toBe(301);
    expect(withQuery.headers.location).toBe('/apps/site/?at=2030-01-01T00:00:00Z');
    // A ? inside the query is part of it.
    const nested = await n.app.inject({ url: '/apps/site?next=/x?y=1' });
    expect(nested.headers.location).toBe('/apps/site/?next=/x?y=1');
    expectError(await n.app.inject({ url: '/apps/Bad' }), 400, 'STRATA_INVALID_NAME');
  });

  it('redirects a directory asked for without its slash, pinned or not, keeping the query', async () => {
    const { node: n } = node();
    const { release } = await publishSite(n.app);
    for (const url of [
      '/apps/site/docs',
      `/apps/site/@${release}/docs`,
      '/apps/site/docs?at=2030-01-01T00:00:00Z',
      '/apps/site/docs?next=/x?y=1',
    ]) {
      const response = await n.app.inject({ url });
      expect(response.statusCode, url).toBe(301);
      const at = url.indexOf('?');
      const [path, query] = at < 0 ? [url, ''] : [url.slice(0, at), url.slice(at)];
      expect(response.headers.location, url).toBe(`${path}/${query}`);
    }
    expect((await n.app.inject({ url: '/apps/site/docs/' })).body).toContain('docs home');
    // Not a directory of the release: still a 404.
    expectError(await n.app.inject({ url: '/apps/site/js' }), 404, 'STRATA_NOT_FOUND');
  });

  it('serves /strata-client.js', async () => {
    const { node: n } = node();
    const response = await n.app.inject({ url: '/strata-client.js' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(response.body).toContain('Strata');
  });
});

describe('the default app', () => {
  /** A node for this test that serves `site` at /. */
  function defaultAppNode(clock: ManualClock): StrataNode {
    return startNode({ clock, defaultApp: 'site' });
  }

  it('is served at / and /@{release}/…, pinned under /', async () => {
    const started = defaultAppNode(new ManualClock(start));
    const { release, versions } = await publishSite(started.app);

    const root = await started.app.inject({ url: '/' });
    expect(root.statusCode, root.body).toBe(200);
    expect(root.body).toBe(indexHtml.replace('<head>', `<head><base href="/@${release}/">`));
    expect(root.headers['strata-release']).toBe(release);
    expect(root.headers['cache-control']).toBe('no-cache');

    const pinned = await started.app.inject({ url: `/@${release}/js/app.js` });
    expect(pinned.statusCode).toBe(200);
    expect(pinned.body).toBe('export const app = 1;\n');
    expect(pinned.headers['cache-control']).toBe(immutable);
    expect(pinned.headers.etag).toBe(`"${versions['/js/app.js']}"`);

    const unpinned = await started.app.inject({ url: '/js/app.js' });
    expect(unpinned.statusCode).toBe(200);
    expect(unpinned.headers['cache-control']).toBe('no-cache');
    const page = await started.app.inject({ url: '/docs/page.html' });
    expect(page.body).toContain(`<base href="/@${release}/docs/">`);
    const routes = await started.app.inject({ url: `/@${release}/_routes.json` });
    expect(routes.json()).toMatchObject({ release, routes: versions });

    // The app is still at /apps/site/ too.
    expect((await started.app.inject({ url: '/apps/site/js/app.js' })).statusCode).toBe(200);
    expectError(await started.app.inject({ url: '/missing.js' }), 404, 'STRATA_NOT_FOUND');
  });

  it('leaves API 404s as API errors', async () => {
    const started = defaultAppNode(new ManualClock(start));
    await publishSite(started.app);
    const missing = await started.app.inject({ url: '/v1/nothing-here', headers: auth });
    expectError(missing, 404, 'STRATA_NOT_FOUND');
    expect(missing.headers['strata-release']).toBeUndefined();
    expect((missing.json() as { error: { message: string } }).error.message).toContain('/v1/nothing-here');
    const post = await started.app.inject({ method: 'POST', url: '/somewhere', headers: auth });
    expectError(post, 404, 'STRATA_NOT_FOUND');
    expect(post.headers['strata-release']).toBeUndefined();
    expect((await started.app.inject({ url: '/v1/apps', headers: auth })).json()).toEqual({ apps: ['site'] });
  });
});
