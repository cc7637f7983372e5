import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page, Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, skipWithoutChromium } from '../support/browser.js';
import { cleanUpProcesses, repositoryRoot, temporaryDirectory } from '../support/process.js';
import {
  midpoint,
  type PublishSummary,
  type ReleaseServer,
  startReleaseServer,
} from '../support/release-server.js';

/**
 * The phosgl example (examples/phosgl) in a real browser, served by a real node: it renders the
 * shaders of its release, a page load never mixes releases (DESIGN §3), time travel serves the old
 * release, and the notes panel writes to the store.
 */

const app = 'phosgl';
const exampleDir = join(repositoryRoot, 'examples', 'phosgl');
const fragmentPath = join('shaders', 'scene.frag');
const originalTint = 'vec3 tint = vec3(0.49, 0.99, 0.66);';
const newTint = 'vec3 tint = vec3(0.99, 0.42, 0.17);';
/** Loading the page, compiling the shaders and the first frames: well under a second on a quiet machine. */
const pageReadyTimeoutMs = 15_000;
/** The rendered model covers about a fifth of the 480×360 canvas; a blank canvas has none of it. */
const litPixelsMin = 2_000;
/** A channel differing this much from the background colour counts as drawn (antialiasing, dithering). */
const channelTolerance = 8;

/** The page's state object (examples/phosgl/main.js). */
interface PhosglState {
  ready: boolean;
  renderer: string;
  release: string | null;
  shaders: { vertex?: string; fragment?: string };
  frames: number;
  error: string | null;
}

/**
 * The few browser globals the page functions use. The project compiles without the DOM library (it
 * is a Node program), and these functions run in the page, so they are typed here.
 */
interface Canvas {
  width: number;
  height: number;
  getContext(kind: '2d'): Context2D | null;
}
interface Context2D {
  drawImage(image: Canvas, x: number, y: number): void;
  getImageData(x: number, y: number, width: number, height: number): { data: Uint8ClampedArray };
}
interface BrowserGlobals {
  phosgl?: PhosglState;
  document: {
    getElementById(id: string): { textContent: string | null } | null;
    createElement(tag: 'canvas'): Canvas;
  };
}

interface PageLoad {
  /** The Strata-Release header of the document. */
  documentRelease: string;
  state: PhosglState;
  /** Every request the page made for something other than the document itself. */
  requests: URL[];
}

let node: ReleaseServer;
let browser: Browser | undefined;
let first: PublishSummary;
let second: PublishSummary | undefined;
const contexts: BrowserContext[] = [];

async function newPage(): Promise<Page> {
  if (!browser) throw new Error('Chromium was not started');
  const context = await browser.newContext();
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(pageReadyTimeoutMs);
  return page;
}

/** Waits until the page is rendering (or failed), and until it has made every request it will make. */
async function settle(page: Page): Promise<PhosglState> {
  await page.waitForFunction(
    () => {
      const state = (globalThis as unknown as BrowserGlobals).phosgl;
      return state !== undefined && ((state.ready && state.frames > 0) || state.error !== null);
    },
    undefined,
    { timeout: pageReadyTimeoutMs },
  );
  await page.waitForLoadState('networkidle', { timeout: pageReadyTimeoutMs });
  const state = await page.evaluate(() => (globalThis as unknown as BrowserGlobals).phosgl as PhosglState);
  expect(state.error).toBeNull();
  return state;
}

/** Navigates (or reloads) and records the requests of that one page load. */
async function load(page: Page, navigate: () => ReturnType<Page['goto']>): Promise<PageLoad> {
  const requests: URL[] = [];
  const record = (request: Request) => {
    if (request.isNavigationRequest() && request.frame() === page.mainFrame()) return;
    requests.push(new URL(request.url()));
  };
  page.on('request', record);
  try {
    const response = await navigate();
    if (!response) throw new Error('the navigation had no response');
    expect(response.status()).toBe(200);
    const documentRelease = (await response.allHeaders())['strata-release'];
    if (!documentRelease) throw new Error('the document has no Strata-Release header');
    const state = await settle(page);
    return { documentRelease, state, requests: [...requests] };
  } finally {
    page.off('request', record);
  }
}

/** Every request of the load for the app is pinned to the document's release (DESIGN §3). */
function expectPinned(pageLoad: PageLoad, origin: string): void {
  const appRequests = pageLoad.requests.filter(
    (url) => url.pathname !== '/strata-client.js' && url.pathname !== '/favicon.ico',
  );
  // Styles, main.js, notes.js, the route table, two shaders, the model and the texture at least.
  expect(appRequests.length).toBeGreaterThanOrEqual(8);
  const prefix = `/apps/${app}/@${pageLoad.documentRelease}/`;
  const unpinned = appRequests.filter((url) => url.origin !== origin || !url.pathname.startsWith(prefix));
  expect(
    unpinned.map((url) => url.href),
    `requests not pinned to ${pageLoad.documentRelease}`,
  ).toEqual([]);
}

/** Pixels of the scene canvas that differ from its background colour (read through a 2D canvas). */
function litPixels(page: Page): Promise<{ lit: number; total: number }> {
  return page.evaluate((tolerance) => {
    const { document } = globalThis as unknown as BrowserGlobals;
    const scene = document.getElementById('scene') as unknown as Canvas;
    const copy = document.createElement('canvas');
    copy.width = scene.width;
    copy.height = scene.height;
    const context = copy.getContext('2d') as Context2D;
    context.drawImage(scene, 0, 0);
    const { data } = context.getImageData(0, 0, copy.width, copy.height);
    // The model is centred; the top-left corner is always background.
    const background = [data[0] ?? 0, data[1] ?? 0, data[2] ?? 0];
    let lit = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (background.some((value, channel) => Math.abs((data[i + channel] ?? 0) - value) > tolerance)) lit++;
    }
    return { lit, total: data.length / 4 };
  }, channelTolerance);
}

describe.skipIf(skipWithoutChromium('test/browser/phosgl.test.ts'))('phosgl in Chromium', () => {
  beforeAll(async () => {
    node = await startReleaseServer();
    [first, browser] = await Promise.all([node.publish(exampleDir, app), launchChromium()]);
    expect(first.release).toBeDefined();
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled(contexts.map((context) => context.close()));
    await browser?.close().catch(() => {});
    await cleanUpProcesses();
  });

  it('renders the shader of its release from the store', async () => {
    const page = await newPage();
    const codings = new Map<string, string | undefined>();
    page.on('response', (response) => {
      codings.set(
        new URL(response.url()).pathname.split('/').pop() ?? '',
        response.headers()['content-encoding'],
      );
    });
    const pageLoad = await load(page, () => page.goto(`${node.server.url}/apps/${app}/`));
    expect(pageLoad.documentRelease).toBe(first.release);
    // Chromium accepts brotli: the script and the page arrive compressed, the PNG texture as stored.
    expect(codings.get('main.js')).toBe('br');
    expect(codings.get('')).toBe('br');
    expect(codings.has('palette.png')).toBe(true);
    expect(codings.get('palette.png')).toBeUndefined();
    expect(pageLoad.state.release).toBe(first.release);
    expect(['webgl', 'canvas']).toContain(pageLoad.state.renderer);
    expect(pageLoad.state.shaders.fragment).toBe(readFileSync(join(exampleDir, fragmentPath), 'utf8'));
    expect(pageLoad.state.shaders.vertex).toBe(
      readFileSync(join(exampleDir, 'shaders', 'scene.vert'), 'utf8'),
    );
    expect(pageLoad.state.frames).toBeGreaterThan(0);
    const { lit, total } = await litPixels(page);
    console.log(`phosgl: renderer ${pageLoad.state.renderer}, ${lit} of ${total} pixels drawn`);
    expect(lit).toBeGreaterThanOrEqual(litPixelsMin);
    expectPinned(pageLoad, node.server.url);
  });

  it('shows a release cut while the page is open after a reload, each load pinned to one release', async () => {
    const page = await newPage();
    const before = await load(page, () => page.goto(`${node.server.url}/apps/${app}/`));
    expect(before.state.release).toBe(first.release);
    expectPinned(before, node.server.url);

    const changed = temporaryDirectory('strata-phosgl-');
    cpSync(exampleDir, changed, { recursive: true });
    const fragment = readFileSync(join(changed, fragmentPath), 'utf8');
    expect(fragment).toContain(originalTint);
    const newFragment = fragment.replace(originalTint, newTint);
    writeFileSync(join(changed, fragmentPath), newFragment);
    second = await node.publish(changed, app, ['--message', 'new tint']);
    expect(second.release).toBeDefined();
    expect(second.release).not.toBe(first.release);
    // Only the shader changed: everything else is routed to the versions already stored.
    expect(second.uploaded).toBe(1);

    // The open page stays on its release: what it loads late (relative URLs) still comes from it.
    const late = await page.evaluate(async () => {
      const response = await fetch('shaders/scene.frag');
      return { release: response.headers.get('strata-release'), text: await response.text() };
    });
    expect(late).toEqual({ release: first.release, text: fragment });

    const after = await load(page, () => page.reload());
    expect(after.documentRelease).toBe(second.release);
    expect(after.state.release).toBe(second.release);
    expect(after.state.shaders.fragment).toBe(newFragment);
    expect(after.state.frames).toBeGreaterThan(0);
    expectPinned(after, node.server.url);
  });

  it('renders the old release with ?at= a time between the two releases', async () => {
    if (!second?.effectiveAt || !first.effectiveAt) throw new Error('the previous test cut no release');
    const at = midpoint(first.effectiveAt, second.effectiveAt);
    const page = await newPage();
    const pageLoad = await load(page, () =>
      page.goto(`${node.server.url}/apps/${app}/?at=${encodeURIComponent(at)}`),
    );
    expect(pageLoad.documentRelease).toBe(first.release);
    expect(pageLoad.state.release).toBe(first.release);
    expect(pageLoad.state.shaders.fragment).toBe(readFileSync(join(exampleDir, fragmentPath), 'utf8'));
    expectPinned(pageLoad, node.server.url);
  });

  it('saves a note from the notes panel into bucket notes', async () => {
    const { token } = await node.api<{ token: string }>('/v1/tokens', {
      method: 'POST',
      body: { role: 'write', name: 'phosgl browser test' },
    });
    const page = await newPage();
    await load(page, () => page.goto(`${node.server.url}/apps/${app}/#token=${encodeURIComponent(token)}`));
    const text = `a note from Chromium ${Date.now()}`;
    await page.fill('#note-text', text);
    await page.click('#note-form button[type="submit"]');
    await page.waitForFunction(
      () =>
        /saved as version|not saved/.test(
          (globalThis as unknown as BrowserGlobals).document.getElementById('note-status')?.textContent ?? '',
        ),
      undefined,
      { timeout: pageReadyTimeoutMs },
    );
    expect(await page.textContent('#note-status')).toMatch(/^saved as version /);
    // The list is refreshed from the store after saving.
    await page.waitForFunction(
      (expected) =>
        (globalThis as unknown as BrowserGlobals).document
          .getElementById('note-list')
          ?.textContent?.includes(expected) ?? false,
      text,
      { timeout: pageReadyTimeoutMs },
    );

    const { keys } = await node.api<{ keys: Array<{ key: string }> }>('/v1/buckets/notes/keys');
    const notes = await Promise.all(
      keys.map(async ({ key }) => {
        const path = `/v1/buckets/notes/keys/${key.split('/').map(encodeURIComponent).join('/')}`;
        return node.api<{ text: string; at: string }>(path);
      }),
    );
    expect(notes.map((note) => note.text)).toContain(text);
  });
});
