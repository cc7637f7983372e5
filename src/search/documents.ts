import { extensionOf } from '../core/content-kind.js';
import { assertNever } from '../core/errors.js';
import { identifierTerms, javascriptIdentifiers, lexicalIdentifiers } from './identifiers.js';
import { wordsOf } from './word-pairs.js';

/** What one version contributes to the index. Every field is plain text for FTS5 (unicode61). */
export interface IndexedDocument {
  /** Full text (for JSON: its string values). */
  body: string;
  /** JSON only: "field value" word pairs, so `field:value` queries become the phrase "field value". */
  fields: string;
  /** Code only: identifier terms of definitions and of uses. */
  defined: string;
  referenced: string;
}

export type DocumentKind = 'json' | 'javascript' | 'code' | 'text';

const javascriptExtensions = new Set(['js', 'mjs', 'cjs', 'jsx']);
const codeExtensions = new Set(['ts', 'tsx', 'glsl', 'vert', 'frag', 'vs', 'fs', 'wgsl', 'css']);

export function documentKind(contentType: string | undefined, key: string): DocumentKind {
  // The declared type wins, as in isTextLike; the key's extension decides only when the type says nothing.
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (type !== '' && type !== 'application/octet-stream' && type !== 'text/plain') return kindOfType(type);
  const extension = extensionOf(key);
  if (extension === 'json' || extension === 'gltf') return 'json';
  if (javascriptExtensions.has(extension)) return 'javascript';
  if (codeExtensions.has(extension)) return 'code';
  return type === '' || type === 'application/octet-stream' ? 'text' : kindOfType(type);
}

function kindOfType(type: string): DocumentKind {
  if (type === 'application/json' || type.endsWith('+json')) return 'json';
  if (/^(text|application)\/(x-)?(javascript|ecmascript)$/.test(type)) return 'javascript';
  if (/^text\/(x-glsl|x-wgsl|css)$/.test(type) || /^(text|application)\/(x-)?typescript$/.test(type))
    return 'code';
  return 'text';
}

/** Turns a version's text into what the index stores. Never throws on bad input: it degrades. */
export function indexedDocument(text: string, kind: DocumentKind): IndexedDocument {
  switch (kind) {
    case 'json':
      return jsonDocument(text);
    case 'javascript':
      return codeDocument(text, javascriptIdentifiers(text));
    case 'code':
      return codeDocument(text, lexicalIdentifiers(text));
    case 'text':
      return { body: text, fields: '', defined: '', referenced: '' };
    default:
      return assertNever(kind, 'document kind');
  }
}

function codeDocument(text: string, identifiers: ReturnType<typeof lexicalIdentifiers>): IndexedDocument {
  return {
    body: text,
    fields: '',
    defined: identifiers.defined.flatMap(identifierTerms).join(' '),
    referenced: identifiers.referenced.flatMap(identifierTerms).join(' '),
  };
}

/**
 * Written between field pairs so that the last word of one pair and the field of the next are
 * never adjacent (a phrase query would otherwise match across pairs), and twice between the pairs
 * of two values (a field phrase is one filler apart, search-query.ts). Never a field name.
 */
export const pairSeparator = '0pair0';

/** Leaves of a JSON document visited at most: bounds the work on a huge, deeply nested file. */
const jsonLeavesMax = 100_000;

function jsonDocument(text: string): IndexedDocument {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // Not valid JSON after all: index it as plain text.
    return { body: text, fields: '', defined: '', referenced: '' };
  }
  const values: string[] = [];
  /** The pairs of each leaf value, one entry per value. */
  const groups: string[] = [];
  let leaves = 0;
  // An explicit stack, not recursion: JSON nested thousands of levels deep must not overflow.
  const stack: Array<{ node: unknown; field: string | undefined }> = [{ node: value, field: undefined }];
  while (stack.length > 0 && leaves < jsonLeavesMax) {
    const { node, field } = stack.pop() as { node: unknown; field: string | undefined };
    if (typeof node === 'string' || typeof node === 'number' || typeof node === 'boolean') {
      leaves += 1;
      const words = String(node);
      if (typeof node === 'string') values.push(words);
      if (field) {
        // One pair per word of the value, cut where FTS5 cuts it: `title:keeper` finds
        // {"title": "Lighthouse keeper"}, and consecutive pairs make `title:"lighthouse keeper"`.
        const pairs = wordsOf(words).map((word) => `${field} ${word}`);
        if (pairs.length > 0) groups.push(pairs.join(` ${pairSeparator} `));
      }
    } else if (Array.isArray(node)) {
      for (let index = node.length - 1; index >= 0; index -= 1) stack.push({ node: node[index], field });
    } else if (node && typeof node === 'object') {
      const entries = Object.entries(node);
      for (let index = entries.length - 1; index >= 0; index -= 1) {
        const [name, child] = entries[index] as [string, unknown];
        stack.push({ node: child, field: fieldToken(name) });
      }
    }
  }
  // Two fillers between values, one between the pairs of a value: a field phrase never runs from one
  // value into the next (array items, or another field of the same name).
  const fields = groups.join(` ${pairSeparator} ${pairSeparator} `);
  return { body: values.join('\n'), fields, defined: '', referenced: '' };
}

/** A field name as one index word: letters and digits only, lower case (FTS5 folds case anyway). */
export function fieldToken(name: string): string | undefined {
  const token = name.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, '');
  return token.length > 0 ? token : undefined;
}
