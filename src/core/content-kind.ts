/**
 * Which objects are text (indexed, diffed) and which buckets files go to when published.
 * One table so that publish, diff and search agree on what a file is.
 */
export type FileKind = 'application' | 'objects' | 'images' | 'sounds' | 'shaders' | 'models';

interface Extension {
  kind: FileKind;
  contentType: string;
  text: boolean;
}

const extensions: Record<string, Extension> = {
  html: { kind: 'application', contentType: 'text/html; charset=utf-8', text: true },
  htm: { kind: 'application', contentType: 'text/html; charset=utf-8', text: true },
  js: { kind: 'application', contentType: 'text/javascript; charset=utf-8', text: true },
  mjs: { kind: 'application', contentType: 'text/javascript; charset=utf-8', text: true },
  cjs: { kind: 'application', contentType: 'text/javascript; charset=utf-8', text: true },
  jsx: { kind: 'application', contentType: 'text/javascript; charset=utf-8', text: true },
  ts: { kind: 'application', contentType: 'text/x-typescript; charset=utf-8', text: true },
  tsx: { kind: 'application', contentType: 'text/x-typescript; charset=utf-8', text: true },
  css: { kind: 'application', contentType: 'text/css; charset=utf-8', text: true },
  map: { kind: 'application', contentType: 'application/json', text: true },
  wasm: { kind: 'application', contentType: 'application/wasm', text: false },
  webmanifest: { kind: 'application', contentType: 'application/manifest+json', text: true },
  json: { kind: 'objects', contentType: 'application/json', text: true },
  txt: { kind: 'objects', contentType: 'text/plain; charset=utf-8', text: true },
  md: { kind: 'objects', contentType: 'text/markdown; charset=utf-8', text: true },
  csv: { kind: 'objects', contentType: 'text/csv; charset=utf-8', text: true },
  xml: { kind: 'objects', contentType: 'application/xml', text: true },
  yaml: { kind: 'objects', contentType: 'application/yaml', text: true },
  // Fonts stay in objects, where files of unknown kinds went before they had types.
  ttf: { kind: 'objects', contentType: 'font/ttf', text: false },
  otf: { kind: 'objects', contentType: 'font/otf', text: false },
  woff: { kind: 'objects', contentType: 'font/woff', text: false },
  woff2: { kind: 'objects', contentType: 'font/woff2', text: false },
  yml: { kind: 'objects', contentType: 'application/yaml', text: true },
  png: { kind: 'images', contentType: 'image/png', text: false },
  jpg: { kind: 'images', contentType: 'image/jpeg', text: false },
  jpeg: { kind: 'images', contentType: 'image/jpeg', text: false },
  gif: { kind: 'images', contentType: 'image/gif', text: false },
  webp: { kind: 'images', contentType: 'image/webp', text: false },
  avif: { kind: 'images', contentType: 'image/avif', text: false },
  ico: { kind: 'images', contentType: 'image/x-icon', text: false },
  svg: { kind: 'images', contentType: 'image/svg+xml', text: true },
  mp3: { kind: 'sounds', contentType: 'audio/mpeg', text: false },
  ogg: { kind: 'sounds', contentType: 'audio/ogg', text: false },
  oga: { kind: 'sounds', contentType: 'audio/ogg', text: false },
  wav: { kind: 'sounds', contentType: 'audio/wav', text: false },
  flac: { kind: 'sounds', contentType: 'audio/flac', text: false },
  m4a: { kind: 'sounds', contentType: 'audio/mp4', text: false },
  glsl: { kind: 'shaders', contentType: 'text/x-glsl; charset=utf-8', text: true },
  vert: { kind: 'shaders', contentType: 'text/x-glsl; charset=utf-8', text: true },
  frag: { kind: 'shaders', contentType: 'text/x-glsl; charset=utf-8', text: true },
  vs: { kind: 'shaders', contentType: 'text/x-glsl; charset=utf-8', text: true },
  fs: { kind: 'shaders', contentType: 'text/x-glsl; charset=utf-8', text: true },
  wgsl: { kind: 'shaders', contentType: 'text/x-wgsl; charset=utf-8', text: true },
  gltf: { kind: 'models', contentType: 'model/gltf+json', text: true },
  glb: { kind: 'models', contentType: 'model/gltf-binary', text: false },
  obj: { kind: 'models', contentType: 'model/obj', text: true },
  stl: { kind: 'models', contentType: 'model/stl', text: false },
  ply: { kind: 'models', contentType: 'application/octet-stream', text: false },
  fbx: { kind: 'models', contentType: 'application/octet-stream', text: false },
  usdz: { kind: 'models', contentType: 'model/vnd.usdz+zip', text: false },
};

/** Own entries only: `x.constructor` must not find Object.prototype's members. */
function extensionInfo(extension: string): Extension | undefined {
  return Object.hasOwn(extensions, extension) ? extensions[extension] : undefined;
}

export function extensionOf(path: string): string {
  const name = path.slice(path.lastIndexOf('/') + 1);
  const dot = name.lastIndexOf('.');
  return dot <= 0 ? '' : name.slice(dot + 1).toLowerCase();
}

/** The bucket kind and content type of a published file; unknown extensions are `objects`. */
export function classifyFile(path: string): { kind: FileKind; contentType: string } {
  const known = extensionInfo(extensionOf(path));
  return known ?? { kind: 'objects', contentType: 'application/octet-stream' };
}

const textTypes =
  /^(text\/|application\/(json|javascript|x-javascript|ecmascript|x-ecmascript|typescript|x-typescript|xml|yaml|x-yaml|toml|sql|graphql|manifest\+json|.*\+json|.*\+xml)|image\/svg\+xml|model\/(gltf\+json|obj))/i;

/** Is this object text, by content type or, failing that, by its key's extension? */
export function isTextLike(contentType: string | undefined, key: string): boolean {
  const declared = contentType?.split(';')[0]?.trim().toLowerCase();
  if (declared && declared !== 'application/octet-stream') return textTypes.test(declared);
  return extensionInfo(extensionOf(key))?.text ?? false;
}
