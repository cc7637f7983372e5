import { describe, expect, it } from 'vitest';
import { classifyFile, extensionOf, isTextLike } from './content-kind.js';

describe('extensionOf', () => {
  it('is the lower-cased text after the last dot of the file name', () => {
    expect(extensionOf('index.html')).toBe('html');
    expect(extensionOf('assets/Logo.PNG')).toBe('png');
    expect(extensionOf('lib/app.min.js')).toBe('js');
  });

  it('ignores dots in directory names', () => {
    expect(extensionOf('v1.2/README')).toBe('');
    expect(extensionOf('a.b/c.d/file')).toBe('');
  });

  it('treats dot files and trailing dots as having no extension', () => {
    expect(extensionOf('.gitignore')).toBe('');
    expect(extensionOf('config/.env')).toBe('');
    expect(extensionOf('notes.')).toBe('');
    expect(extensionOf('')).toBe('');
  });
});

describe('classifyFile', () => {
  it.each([
    ['index.html', 'application', 'text/html; charset=utf-8'],
    ['js/main.mjs', 'application', 'text/javascript; charset=utf-8'],
    ['style.css', 'application', 'text/css; charset=utf-8'],
    ['module.wasm', 'application', 'application/wasm'],
    ['data/levels.json', 'objects', 'application/json'],
    ['fonts/Body.ttf', 'objects', 'font/ttf'],
    ['fonts/title.otf', 'objects', 'font/otf'],
    ['fonts/icons.woff', 'objects', 'font/woff'],
    ['fonts/icons.WOFF2', 'objects', 'font/woff2'],
    ['notes.md', 'objects', 'text/markdown; charset=utf-8'],
    ['img/sprite.PNG', 'images', 'image/png'],
    ['photo.jpeg', 'images', 'image/jpeg'],
    ['icon.svg', 'images', 'image/svg+xml'],
    ['sfx/jump.ogg', 'sounds', 'audio/ogg'],
    ['music.mp3', 'sounds', 'audio/mpeg'],
    ['shaders/water.frag', 'shaders', 'text/x-glsl; charset=utf-8'],
    ['compute.wgsl', 'shaders', 'text/x-wgsl; charset=utf-8'],
    ['models/ship.glb', 'models', 'model/gltf-binary'],
    ['models/ship.gltf', 'models', 'model/gltf+json'],
  ])('%s goes to %s as %s', (path, kind, contentType) => {
    const classified = classifyFile(path);
    expect({ kind: classified.kind, contentType: classified.contentType }).toEqual({ kind, contentType });
  });

  it('sends unknown or missing extensions to objects as octet-stream', () => {
    expect(classifyFile('archive.xyz')).toEqual({ kind: 'objects', contentType: 'application/octet-stream' });
    expect(classifyFile('LICENSE')).toEqual({ kind: 'objects', contentType: 'application/octet-stream' });
    expect(classifyFile('.htaccess')).toEqual({ kind: 'objects', contentType: 'application/octet-stream' });
  });

  it('does not take inherited object properties for extensions', () => {
    // `extensions[ext]` on a plain object literal finds Object.prototype members for these names.
    for (const path of ['weird.constructor', 'weird.__proto__']) {
      const classified = classifyFile(path);
      expect({ kind: classified.kind, contentType: classified.contentType }, path).toEqual({
        kind: 'objects',
        contentType: 'application/octet-stream',
      });
    }
  });
});

describe('isTextLike', () => {
  it('trusts a declared content type, ignoring parameters and case', () => {
    expect(isTextLike('text/plain; charset=utf-8', 'blob.bin')).toBe(true);
    expect(isTextLike('TEXT/HTML', 'x')).toBe(true);
    expect(isTextLike('application/json', 'x')).toBe(true);
    expect(isTextLike('application/javascript', 'x')).toBe(true);
    for (const alias of [
      'x-javascript',
      'ecmascript',
      'x-ecmascript',
      'typescript',
      'x-typescript',
      'x-yaml',
      'toml',
    ])
      expect(isTextLike(`application/${alias}`, 'x'), alias).toBe(true);
    expect(isTextLike('application/xml', 'x')).toBe(true);
    expect(isTextLike('application/yaml', 'x')).toBe(true);
    expect(isTextLike('application/manifest+json', 'x')).toBe(true);
    expect(isTextLike('application/vnd.api+json', 'x')).toBe(true);
    expect(isTextLike('application/atom+xml', 'x')).toBe(true);
    expect(isTextLike('image/svg+xml', 'x')).toBe(true);
    expect(isTextLike('model/gltf+json', 'x')).toBe(true);
    expect(isTextLike('model/obj', 'x')).toBe(true);
  });

  it('says binary for declared binary types, whatever the key says', () => {
    expect(isTextLike('image/png', 'looks-like.txt')).toBe(false);
    expect(isTextLike('application/wasm', 'x.js')).toBe(false);
    expect(isTextLike('audio/ogg', 'x')).toBe(false);
    expect(isTextLike('model/gltf-binary', 'x.gltf')).toBe(false);
  });

  it('falls back to the extension when the type is missing or octet-stream', () => {
    expect(isTextLike(undefined, 'src/main.ts')).toBe(true);
    expect(isTextLike('application/octet-stream', 'shader.vert')).toBe(true);
    expect(isTextLike('', 'readme.md')).toBe(true);
    expect(isTextLike(undefined, 'img.png')).toBe(false);
    expect(isTextLike('application/octet-stream', 'data.bin')).toBe(false);
    expect(isTextLike(undefined, 'no-extension')).toBe(false);
  });

  it('agrees with classifyFile for every known extension', () => {
    for (const path of ['a.html', 'a.js', 'a.css', 'a.json', 'a.txt', 'a.svg', 'a.glsl', 'a.gltf', 'a.obj']) {
      expect(isTextLike(classifyFile(path).contentType, path), path).toBe(true);
    }
    for (const path of ['a.wasm', 'a.png', 'a.mp3', 'a.glb', 'a.stl']) {
      expect(isTextLike(classifyFile(path).contentType, path), path).toBe(false);
    }
  });
});
