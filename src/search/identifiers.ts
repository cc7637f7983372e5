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
      case 'PropertyDefinition':
        if (!n.computed) define(n.key as Node);
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
      case 'ExportSpecifier': {
        const exported = n.exported as Node & { name?: string };
        if (exported.type === 'Identifier' && exported.name) defined.add(exported.name);
        break;
      }
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
  /\b(?:function|class|interface|type|enum|struct|fn|def|func)\s+([A-Za-z_$][\w$]*)/g,
  /\b(?:const|let|var)\s+([A-Za-z_$][\w$]*)/g,
  // C-like function definitions, as in GLSL and WGSL: `vec3 shade(` / `float value =`
  /\b(?:void|float|int|uint|bool|vec[234]|ivec[234]|mat[234]|[A-Z]\w*)\s+([A-Za-z_]\w*)\s*[(=;]/g,
];

/** For languages without a parser here (shaders, TypeScript, anything that did not parse). */
export function lexicalIdentifiers(source: string): Identifiers {
  const defined = new Set<string>();
  for (const pattern of definitionPatterns) {
    for (const match of source.matchAll(pattern)) {
      const name = match[1] as string;
      if (!keywords.has(name)) defined.add(name);
    }
  }
  const referenced = new Set<string>();
  const withoutComments = source.replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, ' ');
  for (const match of withoutComments.matchAll(/[A-Za-z_$][\w$]*/g)) {
    const name = match[0];
    if (!keywords.has(name) && !defined.has(name)) referenced.add(name);
  }
  return { defined: bounded(defined), referenced: bounded(referenced), method: 'lexical' };
}

function bounded(names: Set<string>): string[] {
  return [...names].slice(0, identifiersMax);
}

/**
 * The words of an identifier as the index stores them: the whole name plus its parts, so that
 * `renderScene` is found by `renderScene`, `render` and `scene` (and `MAX_SIZE` by `max`, `size`).
 */
export function identifierTerms(name: string): string[] {
  const whole = name.toLowerCase().replace(/[^a-z0-9_]/g, '');
  const parts = name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/)
    .map((part) => part.toLowerCase())
    .filter((part) => part.length > 0);
  return [...new Set([whole.replace(/_/g, ''), ...parts])].filter((term) => term.length > 0);
}
