import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Identifiers,
  identifierTerms,
  javascriptIdentifiers,
  lexicalIdentifiers,
} from './identifiers.js';

/** The identifiers of a source, checked to come from a real parse. */
function parsed(source: string): Identifiers {
  const result = javascriptIdentifiers(source);
  expect(result.method, source).toBe('parsed');
  return result;
}

/** Every term of the found names, as the index stores them (so `#count` and `count` compare equal). */
function terms(names: readonly string[]): string[] {
  return names.flatMap(identifierTerms);
}

describe('javascriptIdentifiers', () => {
  it('finds classes, methods, accessors, constructors and their parameters as defined', () => {
    const result = parsed(`
      class Renderer extends BaseRenderer {
        constructor(context) { super(); this.context = context; }
        renderScene(scene) { return this.drawMesh(scene.mesh); }
        get pixelRatio() { return window.devicePixelRatio; }
        static create(canvas) { return new Renderer(canvas.getContext('webgl2')); }
      }
    `);
    expect(result.defined).toEqual(
      expect.arrayContaining([
        'Renderer',
        'renderScene',
        'pixelRatio',
        'create',
        'context',
        'scene',
        'canvas',
      ]),
    );
    expect(result.referenced).toEqual(
      expect.arrayContaining([
        'BaseRenderer',
        'drawMesh',
        'mesh',
        'devicePixelRatio',
        'getContext',
        'window',
      ]),
    );
    expect(result.defined).not.toContain('drawMesh');
    expect(result.defined).not.toContain('BaseRenderer');
  });

  it('finds private fields and private methods (#x) as defined, and their uses as referenced', () => {
    const result = parsed(`
      class Counter {
        #count = 0;
        static #instances = 0;
        #bump(step) { this.#count += step; }
        increment() { this.#bump(1); return Counter.#instances; }
        static isCounter(value) { return #count in value; }
      }
    `);
    expect(terms(result.referenced)).toEqual(expect.arrayContaining(['count', 'bump', 'instances']));
    expect(result.defined).toEqual(expect.arrayContaining(['Counter', 'increment', 'isCounter', 'step']));
    // A private field or method is declared in the class body: that is a definition like any other.
    expect(terms(result.defined)).toEqual(expect.arrayContaining(['count', 'instances', 'bump']));
  });

  it('reads static blocks and class fields', () => {
    const result = parsed(`
      class Registry {
        static entries = new Map();
        ready = false;
        static { Registry.entries.set('default', bootstrapRegistry()); }
      }
    `);
    expect(result.defined).toEqual(expect.arrayContaining(['Registry', 'entries', 'ready']));
    expect(result.referenced).toEqual(expect.arrayContaining(['bootstrapRegistry', 'set', 'Map']));
  });

  it('finds arrow functions with default and rest parameters', () => {
    const result = parsed(`
      const area = ({ width = 1, height }, ...extraSides) => width * height + extraSides.length;
      const double = (value) => value * 2;
      const noop = () => {};
    `);
    expect(result.defined).toEqual(
      expect.arrayContaining(['area', 'width', 'height', 'extraSides', 'double', 'value', 'noop']),
    );
    expect(result.referenced).toEqual(expect.arrayContaining(['length', 'width', 'height']));
  });

  it('follows optional chaining and nullish coalescing', () => {
    const result = parsed(`
      const label = user?.profile?.displayName ?? fallbackLabel();
      config?.onLoad?.(event);
      const first = rows?.[0]?.cells;
    `);
    expect(result.defined).toEqual(expect.arrayContaining(['label', 'first']));
    expect(result.referenced).toEqual(
      expect.arrayContaining([
        'user',
        'profile',
        'displayName',
        'fallbackLabel',
        'config',
        'onLoad',
        'event',
        'rows',
        'cells',
      ]),
    );
  });

  it('reads async functions, await, generators and yield*', () => {
    const result = parsed(`
      async function loadTexture(url) {
        const response = await fetch(url);
        return await response.blob();
      }
      function* frames(count) {
        for (let index = 0; index < count; index++) yield index;
        yield* moreFrames();
      }
      async function* stream() { for await (const chunk of source()) yield chunk; }
      const lazy = async () => { await sleep(1); };
    `);
    expect(result.defined).toEqual(
      expect.arrayContaining([
        'loadTexture',
        'url',
        'response',
        'frames',
        'count',
        'index',
        'stream',
        'chunk',
        'lazy',
      ]),
    );
    expect(result.referenced).toEqual(
      expect.arrayContaining(['fetch', 'blob', 'moreFrames', 'source', 'sleep']),
    );
  });

  it('finds the names bound by destructuring with defaults and rest', () => {
    const result = parsed(`
      const { alpha = 1, beta: { gamma }, ...others } = settings;
      const [first, , third = 3, ...tail] = list;
      let { nested: [deep = defaultDeep()] } = source;
      function take({ option = true }, [head]) { return option && head; }
      try { risky(); } catch ({ message }) { report(message); }
    `);
    expect(result.defined).toEqual(
      expect.arrayContaining([
        'alpha',
        'gamma',
        'others',
        'first',
        'third',
        'tail',
        'deep',
        'take',
        'option',
        'head',
        'message',
      ]),
    );
    expect(result.referenced).toEqual(
      expect.arrayContaining(['settings', 'list', 'source', 'defaultDeep', 'risky', 'report']),
    );
  });

  it('reads ESM imports and exports, including export default and export { a as b }', () => {
    const result = parsed(`
      import defaultThing, { named as alias } from './x.js';
      import * as namespace from './y.js';
      function helper() { return alias(defaultThing, namespace.value); }
      const internal = 1;
      export { helper as publicHelper, internal };
      export const version = '1.0';
      export class Widget {}
      export default function main() { return helper(); }
      export * from './z.js';
    `);
    expect(result.defined).toEqual(
      expect.arrayContaining(['helper', 'internal', 'version', 'Widget', 'main']),
    );
    expect(result.referenced).toEqual(
      expect.arrayContaining(['defaultThing', 'alias', 'namespace', 'value', 'helper']),
    );
  });

  it('counts the exported name of `export { a as b }` as defined', () => {
    const local = parsed('function helper() {}\nexport { helper as publicHelper };');
    expect(local.defined).toEqual(expect.arrayContaining(['helper', 'publicHelper']));
    expect(local.referenced).toContain('helper');
    const reexport = parsed("export { drawMesh as renderMesh } from './mesh.js';");
    expect(reexport.defined).toContain('renderMesh');
  });

  it('reads export default of an object literal: its properties are defined', () => {
    const result = parsed(`
      export default {
        name: 'widget',
        setup(props) { return { count: props.initial }; },
        renderFrame: (time) => draw(time),
        [dynamicKey]: 1,
      };
    `);
    expect(result.defined).toEqual(
      expect.arrayContaining(['name', 'setup', 'props', 'count', 'renderFrame', 'time']),
    );
    expect(result.referenced).toEqual(expect.arrayContaining(['initial', 'draw', 'dynamicKey']));
    expect(result.defined).not.toContain('dynamicKey');
  });

  it('accepts top-level await in a module', () => {
    const result = parsed(`
      const data = await loadAll();
      export { data };
    `);
    expect(result.defined).toContain('data');
    expect(result.referenced).toContain('loadAll');
  });

  it('counts calls, member accesses and plain uses as referenced only', () => {
    const result = parsed('gl.enable(gl.BLEND);\nrenderScene(currentScene);\nconsole.log(total + offset);\n');
    expect(result.defined).toEqual([]);
    expect(result.referenced).toEqual(
      expect.arrayContaining([
        'gl',
        'enable',
        'BLEND',
        'renderScene',
        'currentScene',
        'log',
        'total',
        'offset',
      ]),
    );
  });

  it('parses sloppy scripts (with, legacy octals, HTML comments) and hashbangs', () => {
    expect(parsed('with (scope) { answer = 010; }').referenced).toEqual(
      expect.arrayContaining(['scope', 'answer']),
    );
    expect(parsed('<!-- legacy comment\nvar legacyValue = 1;').defined).toContain('legacyValue');
    expect(parsed('#!/usr/bin/env node\nrunCli(process.argv);').referenced).toContain('runCli');
  });
});

describe('fallback to the lexical scan', () => {
  it('falls back on a syntax error and still finds definitions and uses', () => {
    const result = javascriptIdentifiers('function broken( { return renderScene(;\nconst stillHere = 1;');
    expect(result.method).toBe('lexical');
    expect(result.defined).toEqual(expect.arrayContaining(['broken', 'stillHere']));
    expect(result.referenced).toContain('renderScene');
  });

  it('falls back on TypeScript and finds interfaces, types, enums and typed functions', () => {
    const result = javascriptIdentifiers(`
      interface SceneOptions { width: number; height: number }
      type RenderMode = 'forward' | 'deferred';
      enum Color { Red, Green }
      export function renderScene(options: SceneOptions, mode: RenderMode): void {
        drawMesh(options.width);
      }
      const cache: Map<string, number> = new Map();
    `);
    expect(result.method).toBe('lexical');
    expect(result.defined).toEqual(
      expect.arrayContaining(['SceneOptions', 'RenderMode', 'Color', 'renderScene', 'cache']),
    );
    expect(result.referenced).toEqual(expect.arrayContaining(['drawMesh', 'width']));
    // Keywords of the languages scanned are never names.
    for (const keyword of ['interface', 'type', 'enum', 'function', 'const', 'void', 'export'])
      expect([...result.defined, ...result.referenced]).not.toContain(keyword);
  });

  it('falls back on JSX', () => {
    const result = javascriptIdentifiers(
      'export function App() { return <button onClick={handleClick}>Hi</button>; }',
    );
    expect(result.method).toBe('lexical');
    expect(result.defined).toContain('App');
    expect(result.referenced).toContain('handleClick');
  });

  it('never throws on syntax trees too deep to walk: it degrades to the lexical scan', () => {
    // Real bundles hold long member chains and string concatenations; acorn parses these
    // iteratively, so a tree can be fine to parse and still too deep for a recursive walk.
    const shapes: Array<(n: number) => string> = [
      (n) => `x = a${'.b'.repeat(n)};`,
      (n) => `x = a${'()'.repeat(n)};`,
      (n) => `x = ${Array(n).fill('"s"').join(' + ')};`,
      (n) => `x = ${Array(n).fill('a').join(' && ')};`,
      (n) => `${Array(n).fill('a').join(' = ')} = 1;`,
      (n) => `${'{'.repeat(n)}a;${'}'.repeat(n)}`,
    ];
    for (const [index, shape] of shapes.entries()) {
      for (const depth of [2_000, 4_000, 6_000, 10_000, 20_000]) {
        let result: Identifiers | undefined;
        expect(() => {
          result = javascriptIdentifiers(shape(depth));
        }, `shape ${index} at depth ${depth}`).not.toThrow();
        expect(result?.referenced.length, `shape ${index} at depth ${depth}`).toBeGreaterThan(0);
      }
    }
  });

  it('never throws, whatever the input (fast-check)', () => {
    const tokens = fc.constantFrom(
      'function',
      'class',
      'const',
      'let',
      'async',
      'await',
      'yield',
      'import',
      'export',
      'default',
      '{',
      '}',
      '(',
      ')',
      '[',
      ']',
      '=>',
      '=',
      ';',
      ',',
      '.',
      '?.',
      '#x',
      'static',
      '...',
      '`',
      '${',
      '"',
      "'",
      '/*',
      '*/',
      '//',
      '\n',
      '<div>',
      ': number',
      'vec3',
      'fn',
      'renderScene',
      'a',
      '0',
    );
    const source = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc.array(tokens, { maxLength: 60 }).map((parts) => parts.join(' ')),
    );
    fc.assert(
      fc.property(source, (text) => {
        for (const result of [javascriptIdentifiers(text), lexicalIdentifiers(text)]) {
          expect(['parsed', 'lexical']).toContain(result.method);
          for (const name of [...result.defined, ...result.referenced]) expect(typeof name).toBe('string');
        }
      }),
      { numRuns: 500 },
    );
  });

  it('bounds the identifiers kept from one document', () => {
    const source = Array.from({ length: 25_000 }, (_, index) => `var name${index} = use${index};`).join('\n');
    const result = parsed(source);
    expect(result.defined.length).toBeLessThanOrEqual(20_000);
    expect(result.referenced.length).toBeLessThanOrEqual(20_000);
    expect(result.defined.length).toBeGreaterThan(1_000);
  });
});

describe('lexicalIdentifiers', () => {
  it('finds GLSL function, variable and uniform definitions', () => {
    const result = lexicalIdentifiers(`
      precision highp float;
      uniform vec3 lightDirection;
      varying vec2 vUv;
      // the helper below was called shadeOld before
      vec3 shade(vec3 normal) { return normal * max(dot(normal, lightDirection), 0.0); }
      float luminance(vec3 color) { return dot(color, vec3(0.299, 0.587, 0.114)); }
      void main() {
        float brightness = luminance(shade(vNormal));
        gl_FragColor = vec4(vec3(brightness), 1.0);
      }
    `);
    expect(result.method).toBe('lexical');
    expect(result.defined).toEqual(
      expect.arrayContaining(['shade', 'luminance', 'main', 'brightness', 'lightDirection', 'vUv']),
    );
    expect(result.referenced).toEqual(expect.arrayContaining(['dot', 'max', 'vNormal', 'gl_FragColor']));
    // Comments are not code: a name only mentioned there is not a use.
    expect(result.referenced).not.toContain('shadeOld');
    for (const keyword of ['precision', 'highp', 'uniform', 'varying', 'vec3', 'float', 'void', 'return'])
      expect([...result.defined, ...result.referenced]).not.toContain(keyword);
  });

  it('finds WGSL structs, functions and let bindings', () => {
    const result = lexicalIdentifiers(`
      struct VertexOutput {
        @builtin(position) position: vec4<f32>,
        @location(0) uv: vec2<f32>,
      };
      @group(0) @binding(0) var<uniform> time: f32;
      fn wave(x: f32) -> f32 { return sin(x + time); }
      @vertex fn vertexMain(@builtin(vertex_index) index: u32) -> VertexOutput {
        let height = wave(f32(index));
        var output: VertexOutput;
        return output;
      }
      @fragment fn fragmentMain() -> @location(0) vec4<f32> { return vec4<f32>(1.0); }
    `);
    expect(result.defined).toEqual(
      expect.arrayContaining(['VertexOutput', 'wave', 'vertexMain', 'fragmentMain', 'height']),
    );
    expect(result.referenced).toEqual(expect.arrayContaining(['sin', 'time', 'index']));
    for (const keyword of ['fn', 'struct', 'let', 'return']) {
      expect([...result.defined, ...result.referenced]).not.toContain(keyword);
    }
  });

  it('takes time linear in the input, even with many unclosed comments', () => {
    // A shader or stylesheet is scanned inside the commit's transaction: a scan that is quadratic
    // in some input would stall every write of the node. 300 KB take milliseconds when linear.
    const source = '/* a '.repeat(60_000);
    const started = performance.now();
    lexicalIdentifiers(source);
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});

describe('identifierTerms', () => {
  it.each([
    ['renderScene', ['renderscene', 'render', 'scene']],
    ['SceneGraph', ['scenegraph', 'scene', 'graph']],
    ['max_texture_size', ['maxtexturesize', 'max', 'texture', 'size']],
    ['MAX_TEXTURE_SIZE', ['maxtexturesize', 'max', 'texture', 'size']],
    ['parseHTTPResponse', ['parsehttpresponse', 'parse', 'http', 'response']],
    ['XMLHttpRequest', ['xmlhttprequest', 'xml', 'http', 'request']],
    ['getURL', ['geturl', 'get', 'url']],
    ['vec3Normalize', ['vec3normalize', 'vec3', 'normalize']],
    ['utf8ToString', ['utf8tostring', 'utf8', 'to', 'string']],
    ['base64', ['base64']],
    ['scene', ['scene']],
    ['_private', ['private']],
    ['$element', ['element']],
    ['__proto__', ['proto']],
  ])('%s → %j', (name, expected) => {
    expect(identifierTerms(name)).toEqual(expected);
  });

  it('keeps the letters of non-ASCII identifiers (JavaScript allows them)', () => {
    expect(identifierTerms('π')).toEqual(['π']);
    expect(identifierTerms('größeSetzen')).toEqual(['größesetzen', 'größe', 'setzen']);
  });

  it('gives the whole name first, then lower-case parts found inside it (fast-check)', () => {
    const identifier = fc.stringMatching(/^[A-Za-z_$][A-Za-z0-9_$]{0,30}$/);
    fc.assert(
      fc.property(identifier, (name) => {
        const found = identifierTerms(name);
        const whole = name.toLowerCase().replace(/[^a-z0-9]/g, '');
        if (whole === '') {
          expect(found).toEqual([]);
          return;
        }
        expect(found[0]).toBe(whole);
        expect(new Set(found).size).toBe(found.length);
        for (const term of found) {
          expect(term).toMatch(/^[a-z0-9]+$/);
          expect(whole).toContain(term);
        }
      }),
      { numRuns: 500 },
    );
  });
});
