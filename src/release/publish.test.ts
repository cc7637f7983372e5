import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { adminToken, auth, type TempNode, tempNodesPerTest } from '../../test/support/temp-node.js';
import type { ApiClient } from '../client/api-client.js';
import { messageBytesMax } from '../core/commit.js';
import type { Limits } from '../http/context.js';
import {
  directoryFiles,
  Exclusions,
  gitFiles,
  type PublishReporter,
  publish,
  readPublishConfig,
  type SourceFile,
} from './publish.js';

const startNode = tempNodesPerTest();
const directories: string[] = [];

afterEach(() => {
  for (const dir of directories.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function listeningNode(limits: Partial<Limits> = {}): Promise<{ node: TempNode; client: ApiClient }> {
  const node = startNode({ limits });
  await node.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = node.app.server.address() as AddressInfo;
  return { node, client: { url: `http://127.0.0.1:${port}`, token: adminToken } };
}

function tempDir(files: Record<string, string | Buffer> = {}): string {
  const root = mkdtempSync(join(tmpdir(), 'strata-publish-'));
  directories.push(root);
  writeFiles(root, files);
  return root;
}

function writeFiles(root: string, files: Record<string, string | Buffer>): void {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
}

interface RecordingReporter extends PublishReporter {
  calls: Array<{ call: 'start' | 'uploaded' | 'done'; args: unknown[] }>;
  uploadedPaths(): string[];
}

function reporter(): RecordingReporter {
  const calls: RecordingReporter['calls'] = [];
  return {
    calls,
    start: (files, bytes) => calls.push({ call: 'start', args: [files, bytes] }),
    uploaded: (file) => calls.push({ call: 'uploaded', args: [file.path] }),
    done: (summary) => calls.push({ call: 'done', args: [summary] }),
    uploadedPaths: () =>
      calls
        .filter((c) => c.call === 'uploaded')
        .map((c) => c.args[0] as string)
        .sort(),
  };
}

function sha256(content: string | Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

async function getJson<T>(node: TempNode, url: string): Promise<T> {
  const response = await node.app.inject({ url, headers: auth });
  expect(response.statusCode, `${url}: ${response.body}`).toBe(200);
  return response.json() as T;
}

interface Timeline {
  releases: Array<{ release: string; state: string; effectiveAt: string }>;
}

async function timeline(node: TempNode, app: string): Promise<Timeline['releases']> {
  const response = await node.app.inject({ url: `/v1/apps/${app}/releases`, headers: auth });
  if (response.statusCode === 404) return [];
  expect(response.statusCode, response.body).toBe(200);
  return (response.json() as Timeline).releases;
}

async function routesOf(node: TempNode, app: string, release: string): Promise<Record<string, string>> {
  return (await getJson<{ routes: Record<string, string> }>(node, `/v1/apps/${app}/releases/${release}`))
    .routes;
}

async function key(node: TempNode, bucket: string, path: string) {
  return node.app.inject({ url: `/v1/buckets/${bucket}/keys/${path}`, headers: auth });
}

const site = {
  'index.html': '<!doctype html><html><head><title>site</title></head><body></body></html>',
  'js/app.js': 'console.log("app");\n',
  'css/style.css': 'body { margin: 0 }\n',
  'data/levels.json': '{"levels": [1, 2, 3]}',
  'img/logo.png': Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3, 4]),
  'sfx/jump.ogg': Buffer.from('OggS fake audio'),
  'shaders/water.frag': 'void main() {}\n',
  'models/ship.glb': Buffer.from('glTF fake model'),
  LICENSE: 'MIT\n',
};

const expectedBuckets: Record<string, [string, string]> = {
  'index.html': ['application', 'text/html; charset=utf-8'],
  'js/app.js': ['application', 'text/javascript; charset=utf-8'],
  'css/style.css': ['application', 'text/css; charset=utf-8'],
  'data/levels.json': ['objects', 'application/json'],
  'img/logo.png': ['images', 'image/png'],
  'sfx/jump.ogg': ['sounds', 'audio/ogg'],
  'shaders/water.frag': ['shaders', 'text/x-glsl; charset=utf-8'],
  'models/ship.glb': ['models', 'model/gltf-binary'],
  LICENSE: ['objects', 'application/octet-stream'],
};

describe('directoryFiles', () => {
  it('lists regular files with their hash, size, bucket and content type, in path order', async () => {
    const root = tempDir(site);
    const files = await directoryFiles(root, {});
    expect(files.map((f) => f.path)).toEqual(Object.keys(site).sort());
    for (const file of files) {
      const content = site[file.path as keyof typeof site];
      expect(file.hash, file.path).toBe(sha256(content));
      expect(file.size, file.path).toBe(Buffer.byteLength(content));
      expect([file.bucket, file.contentType], file.path).toEqual(expectedBuckets[file.path]);
    }
    const chunks: Buffer[] = [];
    for await (const chunk of (files.find((f) => f.path === 'js/app.js') as SourceFile).open())
      chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe(site['js/app.js']);
  });

  it('leaves out dotfiles but .well-known, dependencies, the config file and symlinks', async () => {
    const dotted = {
      '.git/HEAD': 'ref',
      '.strata/admin-token': 'secret',
      '.env': 'API_KEY=secret',
      'sub/.hidden/x.txt': 'x',
      'sub/.npmrc': 'token',
    };
    const root = tempDir({
      'index.html': 'i',
      ...dotted,
      '.well-known/security.txt': 'contact',
      'node_modules/x/index.js': 'x',
      'lib/node_modules/y/index.js': 'y',
      'strata.publish.json': '{}',
      'sub/strata.publish.json': '{"kept": true}',
    });
    symlinkSync(join(root, 'index.html'), join(root, 'link.html'));
    const config = readPublishConfig(root);
    const exclusions = new Exclusions(config);
    const files = await directoryFiles(root, config, exclusions);
    // Links are not followed; the summary names them.
    expect(exclusions.symlinks).toEqual(['link.html']);
    expect(files.map((f) => f.path)).toEqual([
      '.well-known/security.txt',
      'index.html',
      'sub/strata.publish.json',
    ]);
    // "dotfiles": true publishes them, the rules of `exclude` still apply.
    writeFileSync(join(root, 'strata.publish.json'), '{"dotfiles": true, "exclude": [".git/", ".strata/"]}');
    const withDots = await directoryFiles(root, readPublishConfig(root));
    expect(withDots.map((f) => f.path)).toEqual([
      '.env',
      '.well-known/security.txt',
      'index.html',
      'sub/.hidden/x.txt',
      'sub/.npmrc',
      'sub/strata.publish.json',
    ]);
  });

  it('reads exclude rules as .gitignore does: directories by name, anchored paths, globs', async () => {
    const root = tempDir({
      'index.html': 'i',
      'private/key.txt': 'secret',
      'docs/private/notes.txt': 'secret too',
      'docs/secret.txt': 'secret',
      'docs/sub/secret.txt': 'kept: the anchored rule names docs/secret.txt only',
      'js/app.js': 'app',
      'js/app.js.map': 'map',
      'css/site.css.map': 'map',
      'drafts.txt': 'a file named like a directory rule is kept',
      'drafts/wip.html': 'wip',
    });
    const exclusions = new Exclusions({
      exclude: ['private', '/docs/secret.txt', '*.map', 'drafts/', 'no-such-file.txt', 'typo/'],
    });
    const files = await directoryFiles(root, {}, exclusions);
    expect(files.map((f) => f.path)).toEqual([
      'docs/sub/secret.txt',
      'drafts.txt',
      'index.html',
      'js/app.js',
    ]);
    expect(exclusions.unmatched()).toEqual(['no-such-file.txt', 'typo/']);
  });

  it.each([
    ['not JSON', '{', 'is not valid JSON'],
    ['not an object', '["index.html"]', 'must be a JSON object'],
    ['a misspelt field', '{"exclusions": ["drafts/"]}', 'unknown field exclusions'],
    ['a bucket that is not a name', '{"buckets": {"png": 3}}', 'buckets must map extensions'],
    ['exclude as one string', '{"exclude": "drafts/"}', 'exclude must be a list of paths'],
    ['entry as a list', '{"entry": ["/a.html"]}', 'entry must be a path'],
    ['spa as a string', '{"spa": "yes"}', 'spa must be true or false'],
    ['an extension with its dot', '{"buckets": {".html": "pages"}}', 'without the dot: "html", not ".html"'],
    ['an empty exclude rule', '{"exclude": [""]}', 'exclude must be a list of paths or globs'],
    ['dotfiles as a string', '{"dotfiles": "yes"}', 'dotfiles must be true or false'],
  ])('refuses a strata.publish.json with %s', (_what, text, message) => {
    const root = tempDir({ 'index.html': 'i', 'strata.publish.json': text });
    expect(() => readPublishConfig(root)).toThrow(message);
  });

  it('applies strata.publish.json bucket overrides and exclusions', async () => {
    const root = tempDir({
      'index.html': 'i',
      'img/a.png': 'png',
      'img/b.JPG': 'jpg',
      'drafts/wip.html': 'wip',
      'notes/drafts/deep.txt': 'deep',
      'secret.txt': 's',
      'docs/secret.txt': 'kept',
      'strata.publish.json': JSON.stringify({
        buckets: { png: 'textures', jpg: 'photos' },
        exclude: ['drafts/', '/secret.txt'],
      }),
    });
    const config = readPublishConfig(root);
    const files = await directoryFiles(root, config);
    expect(files.map((f) => [f.path, f.bucket])).toEqual([
      ['docs/secret.txt', 'objects'],
      ['img/a.png', 'textures'],
      ['img/b.JPG', 'photos'],
      ['index.html', 'application'],
    ]);
  });

  it('names a file whose name cannot be a key, and says how to leave it out', async () => {
    const root = tempDir({ 'ok.txt': 'fine', 'tab\there.txt': 'x' });
    const refusal = await directoryFiles(root, {}).catch((error: Error & { code?: string }) => error);
    expect(refusal).toMatchObject({ code: 'STRATA_INVALID_NAME' });
    expect((refusal as Error).message).toContain('"tab\\there.txt" cannot be published');
    expect((refusal as Error).message).toContain('exclude it in strata.publish.json');
  });

  it('refuses a config that is not JSON, or a bucket override that is not a bucket name', async () => {
    const broken = tempDir({ 'strata.publish.json': '{nope' });
    expect(() => readPublishConfig(broken)).toThrow(/not valid JSON/);
    const twice = tempDir({ 'strata.publish.json': '{"spa":true,"spa":false}' });
    expect(() => readPublishConfig(twice)).toThrow(/gives "spa" twice in one object: give it once$/);
    expect(readPublishConfig(tempDir())).toEqual({});
    const root = tempDir({ 'a.png': 'x' });
    await expect(directoryFiles(root, { buckets: { png: 'Not A Bucket' } })).rejects.toMatchObject({
      code: 'STRATA_INVALID_NAME',
    });
  });
});

describe('publish', () => {
  it('uploads files into buckets by kind, keys equal to paths, and writes one release routing them', async () => {
    const { node, client } = await listeningNode();
    const files = await directoryFiles(tempDir(site), {});
    const recorder = reporter();
    const summary = await publish(client, files, { app: 'site', message: 'first' }, recorder);

    const total = files.reduce((sum, f) => sum + f.size, 0);
    expect(summary).toMatchObject({
      app: 'site',
      files: files.length,
      uploaded: files.length,
      uploadedBytes: total,
      unchanged: 0,
      reused: 0,
      dryRun: false,
      release: expect.any(String),
      effectiveAt: expect.any(String),
    });
    expect(summary.unchangedRelease).toBeUndefined();
    expect(recorder.calls[0]).toEqual({ call: 'start', args: [files.length, total] });
    expect(recorder.uploadedPaths()).toEqual(files.map((f) => f.path).sort());
    expect(recorder.calls.at(-1)).toEqual({ call: 'done', args: [summary] });

    const routes = await routesOf(node, 'site', summary.release as string);
    expect(Object.keys(routes).sort()).toEqual(
      Object.keys(site)
        .map((p) => `/${p}`)
        .sort(),
    );
    for (const [path, [bucket, contentType]] of Object.entries(expectedBuckets)) {
      const response = await key(node, bucket, path);
      expect(response.statusCode, `${bucket}/${path}`).toBe(200);
      expect(response.headers['content-type']).toBe(contentType);
      expect(response.headers.etag).toBe(`"${routes[`/${path}`]}"`);
      expect(response.rawPayload.equals(Buffer.from(site[path as keyof typeof site]))).toBe(true);
    }
    const detail = await getJson<{ entry: string; message: string; state: string }>(
      node,
      `/v1/apps/site/releases/${summary.release}`,
    );
    expect(detail).toMatchObject({ entry: '/index.html', message: 'first', state: 'active' });
    const served = await node.app.inject({ url: '/apps/site/js/app.js' });
    expect(served.body).toBe(site['js/app.js']);
  });

  it('uploads nothing and writes no release when nothing changed', async () => {
    const { node, client } = await listeningNode();
    const root = tempDir(site);
    const first = await publish(client, await directoryFiles(root, {}), { app: 'site' }, reporter());
    const recorder = reporter();
    const second = await publish(client, await directoryFiles(root, {}), { app: 'site' }, recorder);
    expect(second).toMatchObject({
      uploaded: 0,
      uploadedBytes: 0,
      unchanged: Object.keys(site).length,
      reused: 0,
      release: first.release,
      effectiveAt: first.effectiveAt,
      unchangedRelease: true,
    });
    expect(recorder.uploadedPaths()).toEqual([]);
    expect(await timeline(node, 'site')).toHaveLength(1);
  });

  it('uploads only the file that changed, and writes a release that differs only there', async () => {
    const { node, client } = await listeningNode();
    const root = tempDir(site);
    const first = await publish(client, await directoryFiles(root, {}), { app: 'site' }, reporter());
    writeFileSync(join(root, 'js/app.js'), 'console.log("app v2");\n');
    const recorder = reporter();
    const second = await publish(client, await directoryFiles(root, {}), { app: 'site' }, recorder);
    expect(second).toMatchObject({ uploaded: 1, unchanged: Object.keys(site).length - 1, reused: 0 });
    expect(second.release).not.toBe(first.release);
    expect(recorder.uploadedPaths()).toEqual(['js/app.js']);

    const before = await routesOf(node, 'site', first.release as string);
    const after = await routesOf(node, 'site', second.release as string);
    const differing = Object.keys(after).filter((path) => after[path] !== before[path]);
    expect(differing).toEqual(['/js/app.js']);
    expect((await timeline(node, 'site')).map((r) => r.state)).toEqual(['active', 'past']);
    const diff = await getJson<{ changed: Array<{ path: string; diff: string }> }>(
      node,
      `/v1/apps/site/diff?from=${first.release}&to=${second.release}`,
    );
    expect(diff.changed.map((c) => c.path)).toEqual(['/js/app.js']);
    expect(diff.changed[0]?.diff).toContain('+console.log("app v2");');
  });

  it('does not upload bytes the store already has under another key', async () => {
    const { node, client } = await listeningNode();
    const root = tempDir({ 'index.html': 'home', 'a.txt': 'shared bytes' });
    await publish(client, await directoryFiles(root, {}), { app: 'site' }, reporter());
    writeFiles(root, { 'copy-of-a.txt': 'shared bytes', 'twin-1.txt': 'twins', 'twin-2.txt': 'twins' });
    const recorder = reporter();
    const summary = await publish(client, await directoryFiles(root, {}), { app: 'site' }, recorder);
    expect(summary).toMatchObject({ files: 5, unchanged: 2, reused: 1, uploaded: 1 });
    expect(recorder.uploadedPaths()).toHaveLength(1);
    expect(recorder.uploadedPaths()[0]).toMatch(/^twin-[12]\.txt$/);
    for (const path of ['copy-of-a.txt', 'twin-1.txt', 'twin-2.txt']) {
      const response = await key(node, 'objects', path);
      expect(response.statusCode, path).toBe(200);
    }
    expect((await key(node, 'objects', 'copy-of-a.txt')).body).toBe('shared bytes');
  });

  it('publishes into the buckets of strata.publish.json, without excluded files', async () => {
    const { node, client } = await listeningNode();
    const root = tempDir({
      'index.html': 'home',
      'img/logo.png': 'png bytes',
      'drafts/wip.html': 'wip',
      'strata.publish.json': JSON.stringify({ buckets: { png: 'textures' }, exclude: ['drafts/'] }),
    });
    const summary = await publish(
      client,
      await directoryFiles(root, readPublishConfig(root)),
      { app: 'site' },
      reporter(),
    );
    const routes = await routesOf(node, 'site', summary.release as string);
    expect(Object.keys(routes).sort()).toEqual(['/img/logo.png', '/index.html']);
    expect((await key(node, 'textures', 'img/logo.png')).statusCode).toBe(200);
    expect((await key(node, 'images', 'img/logo.png')).statusCode).toBe(404);
    expect((await key(node, 'application', 'drafts/wip.html')).statusCode).toBe(404);
    expect((await key(node, 'objects', 'strata.publish.json')).statusCode).toBe(404);
  });

  it('writes nothing on a dry run, but says what it would do', async () => {
    const { node, client } = await listeningNode();
    const files = await directoryFiles(tempDir(site), {});
    const recorder = reporter();
    const summary = await publish(client, files, { app: 'site', dryRun: true }, recorder);
    expect(summary).toMatchObject({ dryRun: true, files: files.length, uploaded: files.length });
    expect(summary.changes).toEqual(
      files.map((file) => ({
        bucket: file.bucket,
        key: file.path,
        size: file.size,
        upload: true,
        newVersion: true,
      })),
    );
    expect(summary.release).toBeUndefined();
    expect(recorder.calls.map((c) => c.call)).toEqual(['done']);
    expect(await getJson(node, '/v1/apps')).toEqual({ apps: [] });
    expect((await key(node, 'application', 'index.html')).statusCode).toBe(404);
    const missing = await node.app.inject({
      method: 'POST',
      url: '/v1/blobs/missing',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: { hashes: files.map((f) => f.hash) },
    });
    expect((missing.json() as { missing: string[] }).missing).toHaveLength(
      new Set(files.map((f) => f.hash)).size,
    );
  });

  it('counts a file served again from what its key holds (after a rollback) as a change, dry run or not', async () => {
    const { node, client } = await listeningNode();
    const root = tempDir({ 'index.html': 'home', 'a.txt': 'one' });
    await publish(client, await directoryFiles(root, {}), { app: 'site' }, reporter());
    writeFileSync(join(root, 'a.txt'), 'two');
    await publish(client, await directoryFiles(root, {}), { app: 'site' }, reporter());
    const rolledBack = await node.app.inject({
      method: 'POST',
      url: '/v1/apps/site/rollback',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: '{}',
    });
    expect(rolledBack.statusCode, rolledBack.body).toBe(201);
    expect((await node.app.inject({ url: '/apps/site/a.txt' })).body).toBe('one');

    // a.txt holds "two" as its key's value, but the active release serves "one".
    const files = await directoryFiles(root, {});
    const dry = await publish(client, files, { app: 'site', dryRun: true }, reporter());
    expect(dry).toMatchObject({ unchanged: 1, rerouted: 1, uploaded: 0 });
    expect(dry.unchangedRelease).toBeUndefined();
    expect(dry.changes).toEqual([
      { bucket: 'objects', key: 'a.txt', size: 3, upload: false, newVersion: false },
    ]);
    const real = await publish(client, files, { app: 'site' }, reporter());
    expect(real).toMatchObject({ unchanged: 1, rerouted: 1 });
    expect(real.unchangedRelease).toBeUndefined();
    expect((await node.app.inject({ url: '/apps/site/a.txt' })).body).toBe('two');
    // Now nothing would change, and the dry run says so.
    const again = await publish(client, files, { app: 'site', dryRun: true }, reporter());
    expect(again).toMatchObject({ unchanged: 2, unchangedRelease: true, release: real.release, changes: [] });
  });

  it('drops files no longer in the directory from the next release', async () => {
    const { node, client } = await listeningNode();
    const root = tempDir({ 'index.html': 'home', 'old.txt': 'old' });
    await publish(client, await directoryFiles(root, {}), { app: 'site' }, reporter());
    rmSync(join(root, 'old.txt'));
    const summary = await publish(client, await directoryFiles(root, {}), { app: 'site' }, reporter());
    expect(summary.unchangedRelease).toBeUndefined();
    expect(Object.keys(await routesOf(node, 'site', summary.release as string))).toEqual(['/index.html']);
    expect((await node.app.inject({ url: '/apps/site/old.txt' })).statusCode).toBe(404);
  });

  it('writes a new release when only entry or spa changed', async () => {
    const { node, client } = await listeningNode();
    const root = tempDir({ 'index.html': 'home', 'app.html': 'app' });
    const first = await publish(client, await directoryFiles(root, {}), { app: 'site' }, reporter());
    const second = await publish(
      client,
      await directoryFiles(root, {}),
      { app: 'site', entry: '/app.html', spa: true },
      reporter(),
    );
    expect(second.unchangedRelease).toBeUndefined();
    expect(second.release).not.toBe(first.release);
    const detail = await getJson<{ entry: string; spa: boolean }>(
      node,
      `/v1/apps/site/releases/${second.release}`,
    );
    expect(detail).toMatchObject({ entry: '/app.html', spa: true });
  });

  it('schedules a release with effectiveAt even when the files are unchanged', async () => {
    const { node, client } = await listeningNode();
    const root = tempDir({ 'index.html': 'home' });
    const first = await publish(client, await directoryFiles(root, {}), { app: 'site' }, reporter());
    const effectiveAt = new Date(Date.now() + 24 * 3_600_000).toISOString();
    const second = await publish(
      client,
      await directoryFiles(root, {}),
      { app: 'site', effectiveAt },
      reporter(),
    );
    expect(second.release).not.toBe(first.release);
    expect(second.effectiveAt).toBe(effectiveAt);
    expect((await timeline(node, 'site')).map((r) => [r.release, r.state])).toEqual([
      [second.release, 'scheduled'],
      [first.release, 'active'],
    ]);
  });

  it('writes no release for an app republished unchanged after another app took over its keys', async () => {
    const { node, client } = await listeningNode();
    const alpha = tempDir({ 'index.html': 'alpha home', 'alpha.txt': 'a' });
    const beta = tempDir({ 'index.html': 'beta home', 'beta.txt': 'b' });
    const first = await publish(client, await directoryFiles(alpha, {}), { app: 'alpha' }, reporter());
    await publish(client, await directoryFiles(beta, {}), { app: 'beta' }, reporter());
    // application/index.html now holds beta's page; alpha's release still serves its own version.
    const again = await publish(client, await directoryFiles(alpha, {}), { app: 'alpha' }, reporter());
    expect(again).toMatchObject({ unchangedRelease: true, release: first.release, uploaded: 0 });
    expect(await timeline(node, 'alpha')).toHaveLength(1);
    expect((await node.app.inject({ url: '/apps/alpha/' })).body).toContain('alpha home');
    expect((await node.app.inject({ url: '/apps/beta/' })).body).toContain('beta home');
  });

  it("keeps two apps' keys apart with keyPrefix, each app serving its own files", async () => {
    const { node, client } = await listeningNode();
    const alpha = tempDir({
      'index.html': 'alpha home',
      'strata.publish.json': JSON.stringify({ keyPrefix: 'alpha/' }),
    });
    const beta = tempDir({
      'index.html': 'beta home',
      'strata.publish.json': JSON.stringify({ keyPrefix: 'beta/' }),
    });
    const log = reporter();
    const first = await publish(
      client,
      await directoryFiles(alpha, readPublishConfig(alpha)),
      { app: 'alpha' },
      log,
    );
    await publish(client, await directoryFiles(beta, readPublishConfig(beta)), { app: 'beta' }, reporter());
    expect((await key(node, 'application', 'alpha/index.html')).body).toBe('alpha home');
    expect((await key(node, 'application', 'beta/index.html')).body).toBe('beta home');
    expect((await key(node, 'application', 'index.html')).statusCode).toBe(404);
    // Routes stay the paths: the prefix is the keys' only.
    expect(Object.keys(await routesOf(node, 'alpha', first.release as string))).toEqual(['/index.html']);
    expect((await node.app.inject({ url: '/apps/alpha/' })).body).toContain('alpha home');
    expect((await node.app.inject({ url: '/apps/beta/' })).body).toContain('beta home');
    const again = await publish(
      client,
      await directoryFiles(alpha, readPublishConfig(alpha)),
      { app: 'alpha' },
      reporter(),
    );
    expect(again).toMatchObject({ unchangedRelease: true, release: first.release });
    const dry = await publish(
      client,
      await directoryFiles(alpha, { keyPrefix: 'moved/' }),
      { app: 'alpha', dryRun: true },
      reporter(),
    );
    expect(dry.changes?.map((change) => `${change.bucket}/${change.key}`)).toEqual([
      'application/moved/index.html',
    ]);
  });

  it('refuses a keyPrefix that would make bad keys, naming the field', () => {
    for (const keyPrefix of ['', '/abs/', 7, '../up/', 'tab\there/']) {
      const root = tempDir({ 'strata.publish.json': JSON.stringify({ keyPrefix }) });
      expect(() => readPublishConfig(root), JSON.stringify(keyPrefix)).toThrow(/keyPrefix/);
    }
  });

  it('refuses a malformed effectiveAt before uploading anything', async () => {
    const { node, client } = await listeningNode();
    const files = await directoryFiles(tempDir({ 'index.html': 'home' }), {});
    const recorder = reporter();
    for (const effectiveAt of ['next tuesday', '2030-02-30T00:00:00Z']) {
      await expect(publish(client, files, { app: 'site', effectiveAt }, recorder)).rejects.toMatchObject({
        code: 'STRATA_INVALID_TIME',
      });
    }
    expect(recorder.calls).toEqual([]);
    expect((await key(node, 'application', 'index.html')).statusCode).toBe(404);
    expect(await getJson(node, '/v1/apps')).toEqual({ apps: [] });
  });

  it('refuses a bad app name or an empty file list before touching the node', async () => {
    const { node, client } = await listeningNode();
    const files = await directoryFiles(tempDir({ 'a.txt': 'a' }), {});
    await expect(publish(client, files, { app: 'Bad App' }, reporter())).rejects.toMatchObject({
      code: 'STRATA_INVALID_NAME',
    });
    await expect(publish(client, [], { app: 'site' }, reporter())).rejects.toMatchObject({
      code: 'STRATA_BAD_REQUEST',
    });
    expect(await getJson(node, '/v1/apps')).toEqual({ apps: [] });
  });

  it('leaves the previous release in effect when an upload is refused', async () => {
    const { node, client } = await listeningNode({ objectBytesMax: 10 });
    const root = tempDir({ 'index.html': 'v1', 'a.txt': 'small' });
    const first = await publish(client, await directoryFiles(root, {}), { app: 'site' }, reporter());
    expect(first.release).toBeDefined();

    // index.html changes to bytes the store already holds (no upload) and big.txt is the one upload,
    // refused. With a second upload in flight, publish() would reject before that upload ended, and
    // closing the node would then wait for its keep-alive connection.
    writeFiles(root, { 'index.html': 'small', 'big.txt': 'more than ten bytes of text' });
    const recorder = reporter();
    await expect(
      publish(client, await directoryFiles(root, {}), { app: 'site' }, recorder),
    ).rejects.toMatchObject({ status: 413, code: 'STRATA_TOO_LARGE' });
    expect(recorder.calls.map((c) => c.call)).toEqual(['start']);

    const releases = await timeline(node, 'site');
    expect(releases.map((r) => [r.release, r.state])).toEqual([[first.release, 'active']]);
    expect((await node.app.inject({ url: '/apps/site/' })).body).toContain('v1');
    // Nothing of the failed publish was committed either: the keys still hold the old bytes.
    expect((await key(node, 'application', 'index.html')).body).toBe('v1');
    expect((await key(node, 'objects', 'big.txt')).statusCode).toBe(404);
  });

  it('refuses what the route table would refuse before uploading or writing anything, dry run or not', async () => {
    const { node, client } = await listeningNode();
    const root = tempDir({ 'index.html': 'v1' });
    const first = await publish(client, await directoryFiles(root, {}), { app: 'site' }, reporter());
    writeFileSync(join(root, 'index.html'), 'v2');
    const refusals: Array<[Record<string, string>, { message?: string }, string]> = [
      [{}, { message: 'x'.repeat(messageBytesMax + 1) }, `longer than ${messageBytesMax} bytes`],
      [{ '@at.txt': 'x' }, {}, '@at.txt cannot be served by an app: its route "/@at.txt" is reserved'],
      [{ '_routes.json': '{}' }, {}, '_routes.json cannot be served by an app'],
      [{ 'no\u00a0break.txt': 'x' }, {}, 'white space other than a plain space'],
    ];
    for (const [extra, options, message] of refusals) {
      const dir = tempDir({ 'index.html': 'v2', ...extra });
      for (const dryRun of [true, false]) {
        const recorder = reporter();
        const files = await directoryFiles(dir, {});
        await expect(
          publish(client, files, { app: 'site', ...options, dryRun }, recorder),
          message,
        ).rejects.toThrow(message);
        expect(recorder.calls, message).toEqual([]);
      }
    }
    // Nothing was uploaded or written: the keys hold the first publish's bytes.
    expect((await key(node, 'application', 'index.html')).body).toBe('v1');
    expect((await key(node, 'objects', '@at.txt')).statusCode).toBe(404);
    expect((await timeline(node, 'site')).map((r) => r.release)).toEqual([first.release]);
    expect((await node.app.inject({ url: '/apps/site/' })).body).toContain('v1');
  });

  it('publishes a file whose name has a space, served at its %20 URL', async () => {
    const { node, client } = await listeningNode();
    const root = tempDir({ 'index.html': 'home', 'logo big.png': 'png bytes' });
    await publish(client, await directoryFiles(root, {}), { app: 'site' }, reporter());
    const served = await node.app.inject({ url: '/apps/site/logo%20big.png' });
    expect(served.statusCode, served.body).toBe(200);
    expect(served.body).toBe('png bytes');
  });

  it('takes the entry with or without its leading slash, and refuses one that is not published before writing anything', async () => {
    const { node, client } = await listeningNode();
    const root = tempDir({ 'home.html': 'home', 'about.html': 'about' });
    const files = await directoryFiles(root, {});
    const bare = await publish(client, files, { app: 'site', entry: 'home.html' }, reporter());
    const detail = await getJson<{ entry: string }>(node, `/v1/apps/site/releases/${bare.release}`);
    expect(detail.entry).toBe('/home.html');

    writeFileSync(join(root, 'about.html'), 'about, edited');
    const changed = await directoryFiles(root, {});
    for (const dryRun of [true, false]) {
      const recorder = reporter();
      await expect(
        publish(client, changed, { app: 'site', entry: 'index.html', dryRun }, recorder),
      ).rejects.toMatchObject({
        code: 'STRATA_BAD_REQUEST',
        message: 'entry index.html is not one of the files to publish',
      });
      expect(recorder.calls).toEqual([]);
    }
    expect((await key(node, 'application', 'about.html')).body).toBe('about');
    expect((await timeline(node, 'site')).map((r) => r.release)).toEqual([bare.release]);
  });

  it('refuses spa without an entry document before writing anything, dry run or not', async () => {
    const { node, client } = await listeningNode();
    const files = await directoryFiles(tempDir({ 'home.html': 'home' }), {});
    for (const dryRun of [true, false]) {
      const recorder = reporter();
      await expect(
        publish(client, files, { app: 'site', spa: true, dryRun }, recorder),
      ).rejects.toMatchObject({
        code: 'STRATA_BAD_REQUEST',
        message: expect.stringMatching(/^spa serves the entry document .*add an index\.html, or set entry$/),
      });
      expect(recorder.calls).toEqual([]);
    }
    expect(await timeline(node, 'site')).toEqual([]);
    const withEntry = await publish(
      client,
      files,
      { app: 'site', spa: true, entry: 'home.html' },
      reporter(),
    );
    expect(withEntry.release).toBeDefined();
  });
});

describe('gitFiles', () => {
  function git(root: string, ...args: string[]): string {
    return execFileSync('git', ['-C', root, ...args])
      .toString()
      .trim();
  }

  function repository(files: Record<string, string>): string {
    const root = tempDir();
    git(root, 'init', '-q');
    git(root, 'config', 'user.name', 'Test');
    git(root, 'config', 'user.email', 'test@example.com');
    git(root, 'config', 'commit.gpgsign', 'false');
    writeFiles(root, files);
    git(root, 'add', '-A');
    git(root, 'commit', '-q', '-m', 'first commit');
    return root;
  }

  it('lists files at HEAD with their committed content, not the work tree', async () => {
    const root = repository({ 'index.html': 'committed', 'js/app.js': 'js v1', 'img/logo.png': 'png' });
    writeFileSync(join(root, 'index.html'), 'uncommitted edit');
    writeFileSync(join(root, 'untracked.txt'), 'not in git');
    rmSync(join(root, 'js/app.js'));

    const tree = gitFiles(root, {});
    expect(tree.commit).toBe(git(root, 'rev-parse', 'HEAD'));
    expect(tree.subject).toBe('first commit');
    expect(tree.files.map((f) => [f.path, f.bucket, f.contentType])).toEqual([
      ['img/logo.png', 'images', 'image/png'],
      ['index.html', 'application', 'text/html; charset=utf-8'],
      ['js/app.js', 'application', 'text/javascript; charset=utf-8'],
    ]);
    const index = tree.files.find((f) => f.path === 'index.html') as SourceFile;
    expect(index).toMatchObject({ size: 'committed'.length, hash: sha256('committed') });
    const chunks: Buffer[] = [];
    for await (const chunk of index.open()) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('committed');
  });

  it('publishes HEAD content', async () => {
    const { node, client } = await listeningNode();
    const root = repository({ 'index.html': '<p>committed</p>', 'js/app.js': 'js v1' });
    writeFileSync(join(root, 'index.html'), '<p>uncommitted</p>');
    const summary = await publish(client, gitFiles(root, {}).files, { app: 'site' }, reporter());
    expect(summary.uploaded).toBe(2);
    const page = await node.app.inject({ url: '/apps/site/' });
    expect(page.body).toContain('<p>committed</p>');
    expect((await node.app.inject({ url: '/apps/site/js/app.js' })).body).toBe('js v1');
    expect((await key(node, 'application', 'index.html')).body).toBe('<p>committed</p>');
  });

  it('applies exclusions and bucket overrides', () => {
    const root = repository({
      'index.html': 'i',
      'drafts/a.html': 'd',
      'tex/a.png': 'p',
      'strata.publish.json': '{}',
    });
    const tree = gitFiles(root, { exclude: ['drafts/'], buckets: { png: 'textures' } });
    expect(tree.files.map((f) => [f.path, f.bucket])).toEqual([
      ['index.html', 'application'],
      ['tex/a.png', 'textures'],
    ]);
  });

  it('lists a subdirectory of the repository with paths relative to that subdirectory', () => {
    const root = repository({ 'site/index.html': 'i', 'site/js/app.js': 'a', 'other/x.txt': 'x' });
    const tree = gitFiles(join(root, 'site'), {});
    expect(tree.files.map((f) => f.path)).toEqual(['index.html', 'js/app.js']);
    expect(tree.files.find((f) => f.path === 'js/app.js')?.hash).toBe(sha256('a'));
  });

  it('refuses a directory that is not in a repository with a commit', () => {
    expect(() => gitFiles(tempDir({ 'a.txt': 'a' }), {})).toThrow(/not inside a git repository/);
    const empty = tempDir();
    git(empty, 'init', '-q');
    expect(() => gitFiles(empty, {})).toThrow(/not inside a git repository/);
  });
});
