import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { adminToken, auth, type TempNode, tempNode } from '../../test/support/temp-node.js';
import type { ApiClient } from '../client/api-client.js';
import type { Limits } from '../http/context.js';
import {
  directoryFiles,
  gitFiles,
  type PublishReporter,
  publish,
  readPublishConfig,
  type SourceFile,
} from './publish.js';

const nodes: TempNode[] = [];
const directories: string[] = [];

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((node) => node.dispose()));
  for (const dir of directories.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function listeningNode(limits: Partial<Limits> = {}): Promise<{ node: TempNode; client: ApiClient }> {
  const node = tempNode({ limits });
  nodes.push(node);
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

describe('x', () => {
  it('leaves the previous release in effect when an upload is refused', async () => {
    const { node, client } = await listeningNode({ objectBytesMax: 10 });
    const root = tempDir({ 'index.html': 'v1', 'a.txt': 'small' });
    const first = await publish(client, await directoryFiles(root, {}), { app: 'site' }, reporter());
    expect(first.release).toBeDefined();

    writeFiles(root, { 'index.html': 'v2', 'big.txt': 'more than ten bytes of text' });
    const recorder = reporter();
    await expect(
      publish(client, await directoryFiles(root, {}), { app: 'site' }, recorder),
    ).rejects.toThrow();
    expect(recorder.calls.some((c) => c.call === 'done')).toBe(false);

    process.stderr.write('after reject\n');
    const releases = await timeline(node, 'site');
    process.stderr.write('after timeline\n');
    expect(releases.map((r) => [r.release, r.state])).toEqual([[first.release, 'active']]);
    expect((await node.app.inject({ url: '/apps/site/' })).body).toContain('v1');
    // Nothing of the failed publish was committed either: the keys still hold the old bytes.
    expect((await key(node, 'application', 'index.html')).body).toBe('v1');
    expect((await key(node, 'objects', 'big.txt')).statusCode).toBe(404);
    process.stderr.write('end\n');
  });
});
