import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type DocumentKind, documentKind, fieldToken, indexedDocument, pairSeparator } from './documents.js';

function pairs(fields: string): string[] {
  return fields
    .split(pairSeparator)
    .map((pair) => pair.trim())
    .filter((pair) => pair !== '');
}

describe('documentKind', () => {
  it.each<[string | undefined, string, DocumentKind]>([
    ['application/json', 'data', 'json'],
    ['application/json; charset=utf-8', 'data', 'json'],
    ['Application/JSON', 'data', 'json'],
    ['application/manifest+json', 'site.webmanifest', 'json'],
    ['model/gltf+json', 'scene', 'json'],
    [undefined, 'config.json', 'json'],
    ['application/octet-stream', 'config.JSON', 'json'],
    [undefined, 'models/scene.gltf', 'json'],
    ['text/javascript; charset=utf-8', 'app', 'javascript'],
    ['application/javascript', 'app', 'javascript'],
    ['application/x-javascript', 'lib.js', 'javascript'],
    ['application/ecmascript', 'es', 'javascript'],
    ['text/ecmascript', 'es', 'javascript'],
    ['application/typescript', 'mod.ts', 'code'],
    ['application/x-typescript', 'mod', 'code'],
    ['text/x-typescript', 'mod', 'code'],
    [undefined, 'main.js', 'javascript'],
    [undefined, 'module.mjs', 'javascript'],
    [undefined, 'legacy.cjs', 'javascript'],
    [undefined, 'component.jsx', 'javascript'],
    ['text/plain', 'app.js', 'javascript'],
    ['text/x-glsl; charset=utf-8', 'shader', 'code'],
    ['text/x-wgsl', 'shader', 'code'],
    ['text/css', 'style', 'code'],
    [undefined, 'types.ts', 'code'],
    ['text/plain; charset=utf-8', 'main.ts', 'code'],
    [undefined, 'view.tsx', 'code'],
    [undefined, 'lib.glsl', 'code'],
    [undefined, 'shader.vert', 'code'],
    [undefined, 'shader.frag', 'code'],
    [undefined, 'shader.vs', 'code'],
    [undefined, 'shader.fs', 'code'],
    [undefined, 'compute.wgsl', 'code'],
    [undefined, 'site.css', 'code'],
    ['text/plain', 'notes', 'text'],
    ['text/markdown', 'readme.md', 'text'],
    ['text/html; charset=utf-8', 'index.html', 'text'],
    ['image/svg+xml', 'logo.svg', 'text'],
    ['application/xml', 'feed.xml', 'text'],
    [undefined, 'readme.md', 'text'],
    [undefined, 'no-extension', 'text'],
    [undefined, 'dir.json/file', 'text'],
  ])('%s with key %s → %s', (contentType, key, expected) => {
    expect(documentKind(contentType, key)).toBe(expected);
  });
});

describe('indexedDocument', () => {
  it('indexes plain text as it is', () => {
    expect(indexedDocument('The lighthouse keeper\nlit the lamp.', 'text')).toEqual({
      body: 'The lighthouse keeper\nlit the lamp.',
      fields: '',
      defined: '',
      referenced: '',
    });
  });

  it('indexes JavaScript identifiers as terms of definitions and uses', () => {
    const document = indexedDocument(
      'export function renderScene(scene) { return drawMesh(scene.mesh); }',
      'javascript',
    );
    expect(document.body).toContain('renderScene');
    expect(document.fields).toBe('');
    expect(document.defined.split(' ')).toEqual(expect.arrayContaining(['renderscene', 'render', 'scene']));
    expect(document.referenced.split(' ')).toEqual(expect.arrayContaining(['drawmesh', 'draw', 'mesh']));
    expect(document.defined.split(' ')).not.toContain('drawmesh');
  });

  it('indexes shaders and other code with the lexical scan', () => {
    const document = indexedDocument(
      'vec3 shadeSurface(vec3 n) { return normalize(n); }\nvoid main() { gl_FragColor = vec4(shadeSurface(vNormal), 1.0); }',
      'code',
    );
    expect(document.defined.split(' ')).toEqual(
      expect.arrayContaining(['shadesurface', 'shade', 'surface', 'main']),
    );
    expect(document.referenced.split(' ')).toEqual(expect.arrayContaining(['normalize', 'vnormal']));
  });

  it('indexes the string values of JSON as the body, and field/word pairs', () => {
    const document = indexedDocument(
      JSON.stringify({
        title: 'Lighthouse keeper',
        tags: ['sea', 'light'],
        year: 1923,
        draft: false,
        author: { first_name: 'Ada', 'Last Name': 'Lovelace' },
        empty: null,
      }),
      'json',
    );
    expect(document.body.split('\n')).toEqual(['Lighthouse keeper', 'sea', 'light', 'Ada', 'Lovelace']);
    // Field names are not text of the document.
    expect(document.body).not.toContain('title');
    expect(pairs(document.fields)).toEqual([
      'title Lighthouse',
      'title keeper',
      'tags sea',
      'tags light',
      'year 1923',
      'draft false',
      'firstname Ada',
      'lastname Lovelace',
    ]);
    expect(document.defined).toBe('');
    expect(document.referenced).toBe('');
  });

  it('cuts a value into words where FTS5 does: a combining accent stays in its word, `_` cuts', () => {
    const document = indexedDocument(JSON.stringify({ name: 'e\u0301cole_normale' }), 'json');
    expect(pairs(document.fields)).toEqual(['name e\u0301cole', 'name normale']);
  });

  it('puts one filler between the pairs of a value and two between values', () => {
    const document = indexedDocument(JSON.stringify({ title: 'sea light', tags: ['sea', 'light'] }), 'json');
    const sep = pairSeparator;
    expect(document.fields).toBe(
      `title sea ${sep} title light ${sep} ${sep} tags sea ${sep} ${sep} tags light`,
    );
  });

  it('keeps every pair two words apart from the next (no phrase spans two pairs)', () => {
    const document = indexedDocument(
      JSON.stringify({ title: 'Lighthouse', subtitle: 'keeper of-the light', count: 3 }),
      'json',
    );
    for (const pair of pairs(document.fields)) expect(pair.split(' ')).toHaveLength(2);
    expect(document.fields).not.toMatch(/(^| )title keeper/);
  });

  it('indexes a top-level JSON string or number without field pairs', () => {
    expect(indexedDocument('"just a string"', 'json')).toMatchObject({ body: 'just a string', fields: '' });
    expect(indexedDocument('42', 'json')).toMatchObject({ body: '', fields: '' });
    expect(indexedDocument('[]', 'json')).toMatchObject({ body: '', fields: '' });
  });

  it('falls back to plain text when JSON does not parse (also a truncated prefix)', () => {
    const broken = '{"title": "Lighthouse keeper", "body": "unterminated';
    expect(indexedDocument(broken, 'json')).toEqual({
      body: broken,
      fields: '',
      defined: '',
      referenced: '',
    });
    const prefix = JSON.stringify({ words: Array(50).fill('lamp') }).slice(0, 100);
    expect(indexedDocument(prefix, 'json').body).toBe(prefix);
  });

  it('bounds the work on a huge JSON document', () => {
    const values = Array.from({ length: 150_000 }, (_, index) => `w${index}`);
    const started = performance.now();
    const document = indexedDocument(JSON.stringify({ words: values }), 'json');
    expect(performance.now() - started).toBeLessThan(5_000);
    const lines = document.body.split('\n');
    expect(lines.length).toBeLessThanOrEqual(100_000);
    expect(lines[0]).toBe('w0');
    expect(pairs(document.fields).length).toBeLessThanOrEqual(100_000);
  });

  it('never throws on deeply nested JSON (it is parsed, so it must be indexed without recursion limits)', () => {
    for (const depth of [1_000, 5_000, 20_000, 100_000]) {
      const arrays = `${'['.repeat(depth)}"deepest"${']'.repeat(depth)}`;
      const objects = `${'{"level":'.repeat(depth)}"deepest"${'}'.repeat(depth)}`;
      for (const text of [arrays, objects]) {
        expect(() => indexedDocument(text, 'json'), `depth ${depth}`).not.toThrow();
      }
    }
  });

  it('never throws, whatever the input and kind (fast-check)', () => {
    const kinds: DocumentKind[] = ['json', 'javascript', 'code', 'text'];
    fc.assert(
      fc.property(
        fc.oneof(fc.json(), fc.string({ unit: 'binary', maxLength: 300 })),
        fc.constantFrom(...kinds),
        (text, kind) => {
          const document = indexedDocument(text, kind);
          for (const part of [document.body, document.fields, document.defined, document.referenced])
            expect(typeof part).toBe('string');
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe('fieldToken', () => {
  it.each([
    ['title', 'title'],
    ['first_name', 'firstname'],
    ['Last Name', 'lastname'],
    ['Größe', 'größe'],
    ['x-y.z', 'xyz'],
    ['---', undefined],
    ['', undefined],
  ])('%j → %j', (name, expected) => {
    expect(fieldToken(name)).toBe(expected);
  });
});
