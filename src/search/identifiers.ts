import type { Node } from 'acorn';
import { parse } from 'acorn';
import { full } from 'acorn-walk';

export interface Identifiers {
  defined: string[];
  referenced: string[];
  /** How they were found: a real parse, or the lexical fallback (other languages, syntax errors). */
  method: 'parsed' | 'lexical';
}

/** Identifiers kept per document: a minified bundle must not blow up the index. */
const identifiersMax = 20_000;

/**
 * Identifiers of JavaScript, with acorn: declarations, classes, methods, exports and properties
 * written in object literals count as defined; calls, member accesses and other uses as referenced.
 * On a syntax error (or TypeScript, JSX…) it falls back to the lexical scan; it never throws.
 */
export function javascriptIdentifiers(source: string): Identifiers {
  let ast: Node;
  try {
    ast = parse(source, {
      ecmaVersion: 'latest',
      sourceType: 'module',
      allowHashBang: true,
      allowReturnOutsideFunction: true,
    });
  } catch {
    try {
      ast = parse(source, {
        ecmaVersion: 'latest',
        sourceType: 'script',
        allowHashBang: true,
        allowReturnOutsideFunction: true,
      });
    } catch {
      return lexicalIdentifiers(source);
    }
  }
  try {
    return walkIdentifiers(ast);
  } catch {
    // A syntax tree thousands of levels deep (long member chains, generated code) overflows the
    // recursive walk: the lexical scan still finds the names.
    return lexicalIdentifiers(source);
  }
}

function walkIdentifiers(ast: Node): Identifiers {
  const defined = new Set<string>();
  const referenced = new Set<string>();
  const definedNodes = new Set<Node>();
  const define = (node: Node | null | undefined) => {
    if (!node) return;
    for (const name of patternNames(node, definedNodes)) defined.add(name);
  };
  full(ast, (node) => {
    const n = node as unknown as Record<string, unknown> & Node;
    switch (node.type) {
      case 'FunctionDeclaration':
      case 'FunctionExpression':
      case 'ClassDeclaration':
      case 'ClassExpression':
        define(n.id as Node | null);
        if (Array.isArray(n.params)) for (const param of n.params as Node[]) define(param);
        break;
      case 'ArrowFunctionExpression':
        for (const param of n.params as Node[]) define(param);
        break;
      case 'VariableDeclarator':
        define(n.id as Node);
        break;
      case 'MethodDefinition':
      case 'PropertyDefinition': {
        const key = n.key as Node & { name?: string };
        if (key.type === 'PrivateIdentifier' && key.name) defined.add(key.name);
        else if (!n.computed) define(key);
        break;
      }
      case 'ExportNamedDeclaration':
        // acorn-walk does not visit export specifiers: `export { a as b }` uses a and defines b.
        for (const specifier of (n.specifiers as Array<Record<string, Node & { name?: string }>>) ?? []) {
          const { local, exported } = specifier;
          if (exported?.type === 'Identifier' && exported.name) defined.add(exported.name);
          if (local?.type === 'Identifier' && local.name) referenced.add(local.name);
        }
        break;
      case 'Property': {
        // A property written in an object literal defines that name (not in destructuring patterns).
        if (!n.computed && (n.value as Node).type !== 'AssignmentPattern') {
          const key = n.key as Node & { name?: string; value?: unknown };
          if (key.type === 'Identifier' && key.name) {
            defined.add(key.name);
            definedNodes.add(key);
          }
        }
        break;
      }
      case 'ImportSpecifier':
      case 'ImportDefaultSpecifier':
      case 'ImportNamespaceSpecifier':
        definedNodes.add(n.local as Node);
        referenced.add((n.local as Node & { name: string }).name);
        break;
      case 'CatchClause':
        define(n.param as Node | null);
        break;
      case 'MemberExpression': {
        const property = n.property as Node & { name?: string };
        if (!n.computed && property.type === 'Identifier' && property.name) referenced.add(property.name);
        if (property.type === 'PrivateIdentifier')
          referenced.add((property as unknown as { name: string }).name);
        break;
      }
      default:
        break;
    }
  });
  // Every identifier that is not the name being declared is a use.
  full(ast, (node) => {
    if (node.type === 'Identifier' && !definedNodes.has(node))
      referenced.add((node as unknown as { name: string }).name);
  });
  return { defined: bounded(defined), referenced: bounded(referenced), method: 'parsed' };
}

function patternNames(node: Node, marked: Set<Node>): string[] {
  const n = node as unknown as Record<string, unknown> & Node;
  switch (node.type) {
    case 'Identifier':
      marked.add(node);
      return [n.name as string];
    case 'ObjectPattern':
      return (n.properties as Node[]).flatMap((property) => {
        const p = property as unknown as Record<string, unknown> & Node;
        return property.type === 'RestElement'
          ? patternNames(p.argument as Node, marked)
          : patternNames(p.value as Node, marked);
      });
    case 'ArrayPattern':
      return (n.elements as Array<Node | null>).flatMap((element) =>
        element ? patternNames(element, marked) : [],
      );
    case 'RestElement':
      return patternNames(n.argument as Node, marked);
    case 'AssignmentPattern':
      return patternNames(n.left as Node, marked);
    default:
      return [];
  }
}

const keywords = new Set(
  (
    'break case catch class const continue debugger default delete do else export extends false finally for function if import in ' +
    'instanceof let new null return static super switch this throw true try typeof var void while with yield async await of ' +
    'interface type enum implements private protected public readonly declare namespace abstract as from get set ' +
    'uniform attribute varying in out inout precision highp mediump lowp layout struct discard fn var let const return ' +
    'float int uint bool void vec2 vec3 vec4 ivec2 ivec3 ivec4 mat2 mat3 mat4 sampler2D samplerCube'
  ).split(' '),
);
const definitionPatterns = [
  /\b(?:function|class|interface|type|enum|struct|fn|def|func)\s+([\p{L}_$][\p{L}\p{N}_$]*)/gu,
  /\b(?:const|let|var)\s+([\p{L}_$][\p{L}\p{N}_$]*)/gu,
  // C-like function definitions, as in GLSL and WGSL: `vec3 shade(` / `float value =`
  /\b(?:void|float|int|uint|bool|vec[234]|ivec[234]|mat[234]|[A-Z]\w*)\s+([A-Za-z_]\w*)\s*[(=;]/g,
];

/** For languages without a parser here (shaders, TypeScript, anything that did not parse). */
export function lexicalIdentifiers(source: string): Identifiers {
  const code = withoutComments(source);
  const defined = new Set<string>();
  for (const pattern of definitionPatterns) {
    for (const match of code.matchAll(pattern)) {
      const name = match[1] as string;
      if (!keywords.has(name)) defined.add(name);
    }
  }
  const referenced = new Set<string>();
  for (const match of code.matchAll(/[\p{L}_$][\p{L}\p{N}_$]*/gu)) {
    const name = match[0];
    if (!keywords.has(name) && !defined.has(name)) referenced.add(name);
  }
  return { defined: bounded(defined), referenced: bounded(referenced), method: 'lexical' };
}

/**
 * Source with comments blanked, in one linear pass (a regex with a lazy `[\s\S]*?` rescans to
 * the end for every unclosed `/*`, which is quadratic on hostile input).
 */
function withoutComments(source: string): string {
  let out = '';
  let index = 0;
  while (index < source.length) {
    const block = source.indexOf('/*', index);
    const line = source.indexOf('//', index);
    const next = block < 0 ? line : line < 0 ? block : Math.min(block, line);
    if (next < 0) return out + source.slice(index);
    out += `${source.slice(index, next)} `;
    if (next === block) {
      const end = source.indexOf('*/', next + 2);
      index = end < 0 ? source.length : end + 2;
    } else {
      const end = source.indexOf('\n', next + 2);
      index = end < 0 ? source.length : end;
    }
  }
  return out;
}

function bounded(names: Set<string>): string[] {
  return [...names].slice(0, identifiersMax);
}

/**
 * The words of an identifier as the index stores them: the whole name plus its parts, so that
 * `renderScene` is found by `renderScene`, `render` and `scene` (and `MAX_SIZE` by `max`, `size`).
 */
export function identifierTerms(name: string): string[] {
  // Letters and digits of any script: JavaScript identifiers may be `π` or `größeSetzen`.
  const whole = name.toLowerCase().replace(/[^\p{L}\p{N}]/gu, '');
  const parts = name
    .replace(/([\p{Ll}\p{N}])(\p{Lu})/gu, '$1 $2')
    .replace(/(\p{Lu}+)(\p{Lu}\p{Ll})/gu, '$1 $2')
    .split(/[^\p{L}\p{N}]+/u)
    .map((part) => part.toLowerCase())
    .filter((part) => part.length > 0);
  return [...new Set([whole, ...parts])].filter((term) => term.length > 0);
}
