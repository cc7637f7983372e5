import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TempNode, tempNode } from '../../test/support/temp-node.js';
import { ManualClock } from '../core/clock.js';
import { StrataError } from '../core/errors.js';
import type { VersionId } from '../core/ids.js';
import { Releases, releasesBucket } from './releases.js';

const start = Date.UTC(2030, 0, 1);
const minute = 60_000;
const hour = 60 * minute;

let clock: ManualClock;
let node: TempNode;
let releases: Releases;

beforeEach(() => {
  clock = new ManualClock(start);
  node = tempNode({ clock });
  releases = new Releases(node.store);
});
afterEach(async () => {
  await node.dispose();
});

async function putFile(
  bucket: string,
  key: string,
  content: string | Buffer,
  contentType = 'text/plain; charset=utf-8',
): Promise<VersionId> {
  const blob = await node.store.blobs.fromBuffer(Buffer.from(content));
  const result = await node.store.write({ ops: [{ kind: 'put', bucket, key, blob, contentType }] });
  return result.versions[0] as VersionId;
}

async function deleteFile(bucket: string, key: string): Promise<VersionId> {
  const result = await node.store.write({ ops: [{ kind: 'delete', bucket, key }] });
  return result.versions[0] as VersionId;
}

async function expectCode(promise: Promise<unknown> | (() => unknown), code: string): Promise<StrataError> {
  let caught: unknown;
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (error) {
    caught = error;
  }
  expect(caught, 'expected a StrataError').toBeInstanceOf(StrataError);
  expect((caught as StrataError).code, (caught as Error).message).toBe(code);
  return caught as StrataError;
}

/** A release of one file, one minute after the previous: the timeline order does not rest on ms ties. */
async function release(app: string, text: string, options: { effectiveAt?: number; message?: string } = {}) {
  clock.advance(minute);
  const version = await putFile('application', `${app}/index.html`, text, 'text/html; charset=utf-8');
  return releases.create(app, { routes: { '/index.html': version }, ...options });
}

function snapshot() {
  return node.store.snapshot();
}

describe('Releases.create', () => {
  it('writes a route table to _releases/<app>, effective now by default', async () => {
    const index = await putFile('application', 'index.html', '<p>hi</p>', 'text/html');
    const main = await putFile('application', 'main.js', 'export {}', 'text/javascript');
    const created = await releases.create('site', {
      routes: { '/index.html': index, '/main.js': main },
      message: 'first',
      author: 'ci',
    });
    expect(created.effectiveAt).toBe(start);

    const row = snapshot().version(created.release);
    expect(row).toMatchObject({ bucket: releasesBucket, key: 'site', kind: 'put', effectiveAt: start });
    expect(row?.refs).toEqual([index, main].sort());
    expect(node.store.commit(row?.commit as string)?.commit).toMatchObject({
      message: 'first',
      author: 'ci',
    });

    const { info, table } = releases.get('site', created.release, snapshot());
    expect(table).toEqual({
      routes: { '/index.html': index, '/main.js': main },
      entry: '/index.html',
      message: 'first',
    });
    expect(info).toEqual({
      release: created.release,
      effectiveAt: start,
      txTime: start,
      message: 'first',
      author: 'ci',
      routes: 2,
      state: 'active',
      conflicts: [],
    });
  });

  it('resolves a {bucket, key} route to the current winner of that key', async () => {
    await putFile('objects', 'data.json', '{"v":1}', 'application/json');
    clock.advance(1);
    const current = await putFile('objects', 'data.json', '{"v":2}', 'application/json');
    // A future version of the key is not the current winner.
    const blob = await node.store.blobs.fromBuffer(Buffer.from('{"v":3}'));
    await node.store.write({
      ops: [
        {
          kind: 'put',
          bucket: 'objects',
          key: 'data.json',
          blob,
          contentType: 'application/json',
          effectiveAt: start + hour,
        },
      ],
    });
    const created = await releases.create('site', {
      routes: { '/data.json': { bucket: 'objects', key: 'data.json' } },
    });
    expect(releases.pinned('site', created.release, snapshot())?.table.routes).toEqual({
      '/data.json': current,
    });
  });

  it('lists every missing version, not only the first ten', async () => {
    const present = await putFile('objects', 'a.txt', 'a');
    const gone = await putFile('objects', 'gone.txt', 'g');
    await deleteFile('objects', 'gone.txt');
    const unknown = Array.from({ length: 12 }, (_, i) => `${i.toString(16).padStart(64, '0')}.0`);
    const error = await expectCode(
      releases.create('site', {
        routes: {
          '/a.txt': present,
          ...Object.fromEntries(unknown.map((version, i) => [`/missing-${i}`, version])),
          '/not-an-id': 'hello',
          '/deleted': { bucket: 'objects', key: 'gone.txt' },
          '/never': { bucket: 'nothing', key: 'here' },
        },
      }),
      'STRATA_UNKNOWN_VERSION',
    );
    expect(new Set(error.details?.missing as string[])).toEqual(
      new Set([...unknown, 'hello', 'objects/gone.txt', 'nothing/here']),
    );
    expect(gone).toBeTruthy();
    expect(releases.timeline('site', snapshot())).toEqual([]);
  });

  it('does not route to tombstones, retractions or system versions', async () => {
    await putFile('objects', 'a.txt', 'a');
    const tombstone = await deleteFile('objects', 'a.txt');
    const first = await release('other', '<p>x</p>');
    const systemVersion = first.release;
    const retracted = await putFile('objects', 'b.txt', 'b');
    const retraction = (await node.store.write({ ops: [{ kind: 'retract', target: retracted }] }))
      .versions[0] as VersionId;
    const error = await expectCode(
      releases.create('site', {
        routes: { '/tomb': tombstone, '/system': systemVersion, '/retraction': retraction },
      }),
      'STRATA_UNKNOWN_VERSION',
    );
    expect(new Set(error.details?.missing as string[])).toEqual(
      new Set([tombstone, systemVersion, retraction]),
    );
    expect(error.message).toMatch(/3 target\(s\) with no value to serve .*a put in a user bucket/);
  });

  it('refuses bad app names, empty tables, bad paths and malformed targets', async () => {
    const version = await putFile('objects', 'a.txt', 'a');
    await expectCode(releases.create('Bad_App', { routes: { '/a': version } }), 'STRATA_INVALID_NAME');
    await expectCode(releases.create('_system', { routes: { '/a': version } }), 'STRATA_INVALID_NAME');
    await expectCode(releases.create('site', { routes: {} }), 'STRATA_BAD_REQUEST');
    for (const path of ['a.txt', '/../a', '/@x', '/_routes.json', '/a//b', '/a?x']) {
      await expectCode(releases.create('site', { routes: { [path]: version } }), 'STRATA_BAD_REQUEST');
    }
    for (const target of [null, 3, { bucket: 'objects' }, { key: 'a.txt' }, ['objects', 'a.txt']]) {
      await expectCode(
        releases.create('site', { routes: { '/a': target as unknown as string } }),
        'STRATA_BAD_REQUEST',
      );
    }
    await expectCode(
      releases.create('site', { routes: { '/a': { bucket: 'Bad Bucket', key: 'a.txt' } } }),
      'STRATA_INVALID_NAME',
    );
    expect(releases.apps(snapshot())).toEqual([]);
  });

  it('defaults entry to /index.html when routed, and checks an explicit entry', async () => {
    const index = await putFile('application', 'index.html', '<p>i</p>', 'text/html');
    const app = await putFile('application', 'app.html', '<p>a</p>', 'text/html');
    const withIndex = await releases.create('one', { routes: { '/index.html': index, '/app.html': app } });
    expect(releases.pinned('one', withIndex.release, snapshot())?.table.entry).toBe('/index.html');

    const without = await releases.create('two', { routes: { '/app.html': app } });
    expect(releases.pinned('two', without.release, snapshot())?.table.entry).toBeUndefined();

    const explicit = await releases.create('three', {
      routes: { '/index.html': index, '/app.html': app },
      entry: '/app.html',
      spa: true,
    });
    expect(releases.pinned('three', explicit.release, snapshot())?.table).toMatchObject({
      entry: '/app.html',
      spa: true,
    });

    await expectCode(
      releases.create('four', { routes: { '/app.html': app }, entry: '/index.html' }),
      'STRATA_BAD_REQUEST',
    );
    await expectCode(
      releases.create('four', { routes: { '/app.html': app }, entry: 'app.html' }),
      'STRATA_BAD_REQUEST',
    );
    expect(releases.apps(snapshot())).toEqual(['one', 'three', 'two']);
  });

  it('stores an explicit effective time, past or future', async () => {
    const version = await putFile('objects', 'a.txt', 'a');
    const future = await releases.create('site', {
      routes: { '/a.txt': version },
      effectiveAt: start + hour,
    });
    expect(future.effectiveAt).toBe(start + hour);
    const past = await releases.create('site', { routes: { '/a.txt': version }, effectiveAt: start - hour });
    expect(past.effectiveAt).toBe(start - hour);
    expect(snapshot().version(future.release)?.effectiveAt).toBe(start + hour);
  });
});

describe('Releases.timeline', () => {
  it('is empty for an unknown app', () => {
    expect(releases.timeline('nothing', snapshot())).toEqual([]);
  });

  it('orders releases newest effective first, with their states', async () => {
    const r1 = await release('site', 'one', { message: 'one' });
    const r2 = await release('site', 'two');
    const scheduled = await release('site', 'three', { effectiveAt: start + 2 * hour });
    const cancelled = await release('site', 'four', { effectiveAt: start + 3 * hour });
    await releases.cancel('site', cancelled.release);
    // Written last but effective earliest: it sorts last.
    const retroactive = await release('site', 'zero', { effectiveAt: start - hour });

    const timeline = releases.timeline('site', snapshot());
    expect(timeline.map((r) => [r.release, r.state])).toEqual([
      [cancelled.release, 'cancelled'],
      [scheduled.release, 'scheduled'],
      [r2.release, 'active'],
      [r1.release, 'past'],
      [retroactive.release, 'past'],
    ]);
    expect(timeline[4]).toMatchObject({ effectiveAt: start - hour, txTime: start + 5 * minute });
    expect(timeline.find((r) => r.release === r1.release)?.message).toBe('one');
    expect(timeline.find((r) => r.release === r2.release)?.message).toBe('release site');
    expect(timeline.every((r) => r.routes === 1)).toBe(true);
  });

  it('moves a scheduled release to active, and the previous one to past, when its time comes', async () => {
    const r1 = await release('site', 'one');
    const r2 = await release('site', 'two', { effectiveAt: start + hour });
    const states = (at: number) =>
      releases.timeline('site', node.store.snapshot(at)).map((r) => [r.release, r.state]);
    expect(states(start + hour - 1)).toEqual([
      [r2.release, 'scheduled'],
      [r1.release, 'active'],
    ]);
    expect(states(start + hour)).toEqual([
      [r2.release, 'active'],
      [r1.release, 'past'],
    ]);
  });

  it('shows a hotfix made after a release was staged as a conflict of the staged release', async () => {
    const r1 = await release('site', 'one');
    const staged = await release('site', 'two', { effectiveAt: start + 24 * hour });
    const hotfix = await release('site', 'one, fixed');

    const timeline = releases.timeline('site', snapshot());
    expect(timeline.map((r) => [r.release, r.state, r.conflicts])).toEqual([
      [staged.release, 'scheduled', [hotfix.release]],
      [hotfix.release, 'active', []],
      [r1.release, 'past', []],
    ]);
    // When the staged release takes effect, the hotfix is still reported beside it.
    const later = releases.timeline('site', node.store.snapshot(start + 24 * hour));
    expect(later[0]).toMatchObject({ release: staged.release, state: 'active', conflicts: [hotfix.release] });
  });

  it('lists apps that have any release, scheduled ones included, but not only-cancelled ones', async () => {
    await release('now', 'a');
    await release('later', 'b', { effectiveAt: start + hour });
    const gone = await release('gone', 'c', { effectiveAt: start + hour });
    await releases.cancel('gone', gone.release);
    expect(releases.apps(snapshot())).toEqual(['later', 'now']);
  });
});

describe('Releases.inEffect and pinned', () => {
  it('finds the release in effect at any time', async () => {
    const r1 = await release('site', 'one');
    const r2 = await release('site', 'two', { effectiveAt: start + hour });
    const s = snapshot();
    expect(releases.inEffect('site', start, s)).toBeUndefined();
    expect(releases.inEffect('site', start + minute, s)?.release.version).toBe(r1.release);
    expect(releases.inEffect('site', start + hour - 1, s)?.release.version).toBe(r1.release);
    expect(releases.inEffect('site', start + hour, s)?.release.version).toBe(r2.release);
    expect(releases.inEffect('site', start + hour, s)?.table.routes['/index.html']).toBeDefined();
    expect(releases.inEffect('other', start + hour, s)).toBeUndefined();
  });

  it('serves exactly one release of one app', async () => {
    const r1 = await release('site', 'one');
    const other = await release('other', 'x');
    const file = await putFile('objects', 'a.txt', 'a');
    const s = snapshot();
    expect(releases.pinned('site', r1.release, s)?.release.version).toBe(r1.release);
    expect(releases.pinned('site', other.release, s)).toBeUndefined();
    expect(releases.pinned('site', file, s)).toBeUndefined();
    expect(releases.pinned('site', `${'0'.repeat(64)}.0`, s)).toBeUndefined();
    expect(releases.pinned('site', 'garbage', s)).toBeUndefined();
  });

  it('still serves a cancelled release by its pinned id', async () => {
    await release('site', 'one');
    const staged = await release('site', 'two', { effectiveAt: start + hour });
    await releases.cancel('site', staged.release);
    expect(releases.pinned('site', staged.release, snapshot())?.release.version).toBe(staged.release);
    expect(releases.inEffect('site', start + hour, snapshot())?.release.version).not.toBe(staged.release);
  });

  it('get refuses releases of other apps and unknown ids', async () => {
    const r1 = await release('site', 'one');
    await expectCode(() => releases.get('other', r1.release, snapshot()), 'STRATA_NOT_FOUND');
    await expectCode(() => releases.get('site', `${'0'.repeat(64)}.0`, snapshot()), 'STRATA_NOT_FOUND');
  });
});

describe('Releases.rollback', () => {
  it('re-issues the newest earlier release whose routes differ, effective now', async () => {
    const r1 = await release('site', 'one');
    const r2 = await release('site', 'two');
    clock.advance(minute);
    const rolled = await releases.rollback('site', { author: 'ops' });
    expect(rolled.rolledBackTo).toBe(r1.release);
    expect(rolled.effectiveAt).toBe(clock.now());
    const s = snapshot();
    expect(releases.inEffect('site', clock.now(), s)?.release.version).toBe(rolled.release);
    expect(releases.pinned('site', rolled.release, s)?.table.routes).toEqual(
      releases.pinned('site', r1.release, s)?.table.routes,
    );
    const info = releases.get('site', rolled.release, s).info;
    expect(info).toMatchObject({ state: 'active', message: `rollback to ${r1.release}`, author: 'ops' });
    expect(r2.release).not.toBe(rolled.release);
  });

  it('skips earlier releases that serve the same routes', async () => {
    const r1 = await release('site', 'one');
    const same = releases.pinned('site', r1.release, snapshot())?.table.routes ?? {};
    clock.advance(minute);
    await releases.create('site', { routes: same, message: 'same again' });
    const two = await release('site', 'two');
    clock.advance(minute);
    await releases.create('site', { routes: same, message: 'back to one' });
    clock.advance(minute);
    // The active release serves r1's routes: the newest earlier one that differs is "two".
    const rolled = await releases.rollback('site', {});
    expect(rolled.rolledBackTo).toBe(two.release);
  });

  it('goes further back when rolling back twice (docs/api.md)', async () => {
    const r1 = await release('site', 'one');
    const r2 = await release('site', 'two');
    await release('site', 'three');
    clock.advance(minute);
    const first = await releases.rollback('site', {});
    expect(first.rolledBackTo).toBe(r2.release);
    clock.advance(minute);
    const second = await releases.rollback('site', {});
    expect(second.rolledBackTo).toBe(r1.release);
    // A third has nowhere further to go, and says so in those terms.
    clock.advance(minute);
    const third = await expectCode(releases.rollback('site', {}), 'STRATA_CONFLICT');
    expect(third.message).toContain(
      `rolled back as far as it goes: the active release restores ${r1.release}`,
    );
  });

  it('takes rollbacks made at once one after the other, each going further back', async () => {
    const r1 = await release('site', 'one');
    const r2 = await release('site', 'two');
    const r3 = await release('site', 'three');
    await release('site', 'four');
    clock.advance(minute);
    const rolled = await Promise.all([1, 2, 3].map(() => releases.rollback('site', {})));
    expect(rolled.map((r) => r.rolledBackTo)).toEqual([r3.release, r2.release, r1.release]);
    // A fourth at once with them would have had nowhere to go; one now says so.
    await expectCode(releases.rollback('site', {}), 'STRATA_CONFLICT');
  });

  it('refuses to roll back to a release that serves what the active one serves', async () => {
    const r1 = await release('site', 'one');
    const active = await release('site', 'two');
    const same = await expectCode(releases.rollback('site', { to: active.release }), 'STRATA_CONFLICT');
    expect(same.message).toContain('serves what the active release serves');
    expect(releases.timeline('site', snapshot())).toHaveLength(2);
    // A release that serves something else is still one to roll back to.
    expect((await releases.rollback('site', { to: r1.release })).rolledBackTo).toBe(r1.release);
  });

  it('rolls back to a release published in the same millisecond as the active one', async () => {
    const a = await putFile('objects', 'a.txt', 'a');
    const b = await putFile('objects', 'a.txt', 'b');
    const r1 = await releases.create('site', { routes: { '/a.txt': a } });
    const r2 = await releases.create('site', { routes: { '/a.txt': b } });
    expect(releases.timeline('site', snapshot()).map((r) => [r.release, r.state])).toEqual([
      [r2.release, 'active'],
      [r1.release, 'past'],
    ]);
    const rolled = await releases.rollback('site', {});
    expect(rolled.rolledBackTo).toBe(r1.release);
  });

  it('rolls back to a named release, at a chosen time', async () => {
    const r1 = await release('site', 'one');
    await release('site', 'two');
    await release('site', 'three');
    const rolled = await releases.rollback('site', { to: r1.release, effectiveAt: start + hour });
    expect(rolled).toMatchObject({ rolledBackTo: r1.release, effectiveAt: start + hour });
    expect(releases.get('site', rolled.release, snapshot()).info.state).toBe('scheduled');
  });

  it('refuses what cannot be rolled back', async () => {
    await expectCode(releases.rollback('nothing', {}), 'STRATA_NOT_FOUND');
    const r1 = await release('site', 'one');
    await expectCode(releases.rollback('site', {}), 'STRATA_CONFLICT');
    await expectCode(releases.rollback('site', { to: `${'0'.repeat(64)}.0` }), 'STRATA_NOT_FOUND');
    const staged = await release('site', 'two', { effectiveAt: start + hour });
    await releases.cancel('site', staged.release);
    await expectCode(releases.rollback('site', { to: staged.release }), 'STRATA_CONFLICT');
    // Only scheduled releases, no active one yet.
    await release('future', 'f', { effectiveAt: start + hour });
    await expectCode(releases.rollback('future', {}), 'STRATA_CONFLICT');
    expect(releases.timeline('site', snapshot()).filter((r) => r.state === 'active')[0]?.release).toBe(
      r1.release,
    );
  });
});

describe('Releases.cancel', () => {
  it('retracts a scheduled release, so that it never takes effect', async () => {
    const r1 = await release('site', 'one');
    const staged = await release('site', 'two', { effectiveAt: start + hour });
    const retraction = await releases.cancel('site', staged.release);
    const row = snapshot().version(retraction);
    expect(row).toMatchObject({
      kind: 'retract',
      target: staged.release,
      bucket: releasesBucket,
      key: 'site',
    });
    clock.set(start + 2 * hour);
    expect(releases.inEffect('site', clock.now(), snapshot())?.release.version).toBe(r1.release);
    expect(releases.get('site', staged.release, snapshot()).info.state).toBe('cancelled');
  });

  it('refuses active, past, cancelled and unknown releases', async () => {
    const r1 = await release('site', 'one');
    const r2 = await release('site', 'two');
    await expectCode(releases.cancel('site', r2.release), 'STRATA_CONFLICT');
    await expectCode(releases.cancel('site', r1.release), 'STRATA_CONFLICT');
    const staged = await release('site', 'three', { effectiveAt: start + hour });
    await releases.cancel('site', staged.release);
    await expectCode(releases.cancel('site', staged.release), 'STRATA_CONFLICT');
    await expectCode(releases.cancel('site', `${'0'.repeat(64)}.0`), 'STRATA_NOT_FOUND');
    await expectCode(releases.cancel('other', r1.release), 'STRATA_NOT_FOUND');
  });
});

describe('Releases.diff', () => {
  it('reports added, removed and changed paths, with a unified diff for text', async () => {
    const index1 = await putFile('application', 'index.html', '<h1>one</h1>\n<p>same</p>\n', 'text/html');
    const logo1 = await putFile('images', 'logo.png', Buffer.from([1, 2, 3]), 'image/png');
    const old = await putFile('objects', 'old.txt', 'old');
    const keep = await putFile('objects', 'keep.txt', 'keep');
    const r1 = await releases.create('site', {
      routes: { '/index.html': index1, '/logo.png': logo1, '/old.txt': old, '/keep.txt': keep },
    });
    const index2 = await putFile('application', 'index.html', '<h1>two</h1>\n<p>same</p>\n', 'text/html');
    const logo2 = await putFile('images', 'logo.png', Buffer.from([4, 5, 6]), 'image/png');
    const added = await putFile('objects', 'new.txt', 'new');
    const r2 = await releases.create('site', {
      routes: { '/index.html': index2, '/logo.png': logo2, '/new.txt': added, '/keep.txt': keep },
    });

    const diff = releases.diff('site', r1.release, r2.release, snapshot());
    expect(diff).toMatchObject({
      from: r1.release,
      to: r2.release,
      added: ['/new.txt'],
      removed: ['/old.txt'],
    });
    expect(diff.changed.map((c) => [c.path, c.from, c.to])).toEqual([
      ['/index.html', index1, index2],
      ['/logo.png', logo1, logo2],
    ]);
    const text = diff.changed[0]?.diff as string;
    expect(text).toContain('--- /index.html');
    expect(text).toContain('+++ /index.html');
    expect(text).toContain('-<h1>one</h1>');
    expect(text).toContain('+<h1>two</h1>');
    expect(text).toContain(' <p>same</p>');
    expect(diff.changed[1]?.diff).toBeNull();

    const reverse = releases.diff('site', r2.release, r1.release, snapshot());
    expect(reverse).toMatchObject({ added: ['/old.txt'], removed: ['/new.txt'] });
    expect(releases.diff('site', r1.release, r1.release, snapshot())).toMatchObject({
      added: [],
      removed: [],
      changed: [],
    });
  });

  it('does not compute a diff of large objects', async () => {
    const big1 = await putFile('objects', 'big.txt', 'a\n'.repeat(600 * 1024));
    const big2 = await putFile('objects', 'big.txt', 'b\n'.repeat(600 * 1024));
    const r1 = await releases.create('site', { routes: { '/big.txt': big1 } });
    const r2 = await releases.create('site', { routes: { '/big.txt': big2 } });
    const diff = releases.diff('site', r1.release, r2.release, snapshot());
    expect(diff.changed).toEqual([
      { path: '/big.txt', from: big1, to: big2, diff: null, notCompared: 'text over 1048576 bytes' },
    ]);
    const png1 = await putFile('images', 'a.png', Buffer.from([0x89, 0x50, 1]), 'image/png');
    const png2 = await putFile('images', 'a.png', Buffer.from([0x89, 0x50, 2]), 'image/png');
    const r3 = await releases.create('pictures', { routes: { '/a.png': png1 } });
    const r4 = await releases.create('pictures', { routes: { '/a.png': png2 } });
    expect(releases.diff('pictures', r3.release, r4.release, snapshot()).changed).toEqual([
      { path: '/a.png', from: png1, to: png2, diff: null, notCompared: 'binary' },
    ]);
  });

  it('diffs text stored as a file blob (above the inline limit)', async () => {
    const v1 = await putFile('objects', 'mid.txt', `${'x'.repeat(100 * 1024)}\nend one\n`);
    const v2 = await putFile('objects', 'mid.txt', `${'x'.repeat(100 * 1024)}\nend two\n`);
    const r1 = await releases.create('site', { routes: { '/mid.txt': v1 } });
    const r2 = await releases.create('site', { routes: { '/mid.txt': v2 } });
    const diff = releases.diff('site', r1.release, r2.release, snapshot());
    expect(diff.changed[0]?.diff).toContain('+end two');
  });

  it('refuses releases of other apps', async () => {
    const r1 = await release('site', 'one');
    const other = await release('other', 'x');
    await expectCode(() => releases.diff('site', r1.release, other.release, snapshot()), 'STRATA_NOT_FOUND');
    await expectCode(() => releases.diff('site', other.release, r1.release, snapshot()), 'STRATA_NOT_FOUND');
  });
});
