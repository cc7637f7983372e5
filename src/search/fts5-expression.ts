import { fail } from '../core/errors.js';

/**
 * A user's query made into the FTS5 expression that means what they typed, in two steps that need
 * only FTS5's tokens, not its whole grammar:
 *
 * - A word joined by punctuation (`e-mail`, `gl.enable`, `o'clock`) is not an FTS5 bareword, and
 *   FTS5 would read `e-mail` as the column filter `-mail:`. It becomes the phrase `"e-mail"`,
 *   which FTS5 cuts into the words it indexed side by side.
 * - With a `scope`, every phrase the query does not put under a column filter itself is put under
 *   `scope :`. The text table's `fields` column holds JSON field names beside their words
 *   (documents.ts); a plain word must not find a field's name, only a `name:value` term may.
 *
 * Column filters the query writes (`fields:"…"`, `body:word`, `{a b}:`, `-col:`) and their
 * parenthesized groups are left as written. A `name:` with nothing after it, or a `*` that ends
 * no word, is refused here with what to write instead.
 */
export function prepareExpression(q: string, scope?: string): string {
  const tokens = tokenize(q);
  checkParentheses(tokens);
  let out = '';
  let index = 0;
  /** Per open parenthesis: whether its group is under a column filter. */
  const qualified: boolean[] = [false];
  let pendingFilter = false;
  const peek = (from: number): Token | undefined => {
    for (let at = from; at < tokens.length; at += 1) {
      if ((tokens[at] as Token).kind !== 'space') return tokens[at];
    }
    return undefined;
  };
  const skipSpaces = (from: number): number => {
    let at = from;
    while (tokens[at]?.kind === 'space') at += 1;
    return at;
  };

  while (index < tokens.length) {
    const token = tokens[index] as Token;
    const next = peek(index + 1);
    if (token.kind === 'space') {
      out += token.text;
      index += 1;
    } else if (token.text === '(') {
      qualified.push(pendingFilter || (qualified.at(-1) as boolean));
      pendingFilter = false;
      out += '(';
      index += 1;
    } else if (token.text === ')') {
      if (qualified.length > 1) qualified.pop();
      out += ')';
      index += 1;
    } else if (token.kind === 'run' && next?.text === ':' && /^-?[\p{L}\p{N}_]+$/u.test(token.text)) {
      // A column filter, `name:` or `-name:`.
      const colon = skipSpaces(index + 1);
      out += `${token.text}${joinText(tokens, index + 1, colon + 1)}`;
      index = colon + 1;
      requireFilterOperand(tokens, index, token.text);
      pendingFilter = true;
    } else if (token.text === '{' || (token.text === '-' && next?.text === '{')) {
      // A column set, `{a b}:` or `-{a b}:`, copied through its colon.
      let end = index;
      while (end < tokens.length && (tokens[end] as Token).text !== '}') end += 1;
      const colon = skipSpaces(end + 1);
      out += joinText(tokens, index, Math.min(colon + 1, tokens.length));
      index = colon + 1;
      pendingFilter = true;
    } else if (token.kind === 'run' && ['AND', 'OR', 'NOT'].includes(token.text)) {
      out += token.text;
      index += 1;
    } else if (token.kind === 'run' && token.text.startsWith('-')) {
      fail(
        'STRATA_BAD_QUERY',
        token.text === '-'
          ? 'a lone - is no operator here: exclude with NOT (a NOT b), or quote it in a phrase'
          : `${token.text} is not an exclusion here: write NOT ${token.text.slice(1)} (after what it excludes from)`,
      );
    } else if (token.text === '*') {
      fail('STRATA_BAD_QUERY', 'a * must end a word or a phrase (pre*, "some wor"*), not stand alone');
    } else if (token.text === 'NEAR' && next?.text === '(') {
      const end = closingParenthesis(tokens, skipSpaces(index + 1));
      out += scoped(joinText(tokens, index, end), scope, pendingFilter || (qualified.at(-1) as boolean));
      pendingFilter = false;
      index = end;
    } else if (token.kind === 'string' || token.kind === 'run' || token.text === '^') {
      const end = phraseEnd(tokens, index);
      out += scoped(joinText(tokens, index, end), scope, pendingFilter || (qualified.at(-1) as boolean));
      pendingFilter = false;
      index = end;
    } else {
      // Anything else (a stray `+`, `}`, `,`, `:`) is FTS5's to refuse, where the user wrote it.
      out += token.text;
      index += 1;
    }
  }
  return out;
}

interface Token {
  kind: 'space' | 'string' | 'run' | 'punct';
  text: string;
  /** Characters of the query it came from (a joined word gains its quotes in `text`). */
  width: number;
}

const punctuation = new Set(['(', ')', '{', '}', ':', '*', '^', '+', ',']);
/** FTS5's bareword characters: ASCII letters, digits and `_`, U+001A, and everything not ASCII. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: U+001A is a bareword character to FTS5.
const bareword = /^(?:[A-Za-z0-9_\u001a]|[^\u0000-\u007f])+$/u;
const wordCharacter = /[\p{L}\p{N}]/u;

function tokenize(q: string): Token[] {
  const tokens: Token[] = [];
  let index = 0;
  while (index < q.length) {
    const character = q[index] as string;
    if (/\s/.test(character)) {
      const start = index;
      while (index < q.length && /\s/.test(q[index] as string)) index += 1;
      tokens.push({ kind: 'space', text: q.slice(start, index), width: index - start });
    } else if (character === '"') {
      // A string runs to the next lone quote ("" is a quote inside it); unterminated, to the end.
      let end = index + 1;
      for (;;) {
        const quote = q.indexOf('"', end);
        if (quote < 0) {
          end = q.length;
          break;
        }
        if (q[quote + 1] === '"') end = quote + 2;
        else {
          end = quote + 1;
          break;
        }
      }
      tokens.push({ kind: 'string', text: q.slice(index, end), width: end - index });
      index = end;
    } else if (punctuation.has(character)) {
      tokens.push({ kind: 'punct', text: character, width: 1 });
      index += 1;
    } else {
      const start = index;
      while (index < q.length && !/[\s"]/.test(q[index] as string) && !punctuation.has(q[index] as string))
        index += 1;
      const run = q.slice(start, index);
      // A `-` that starts a column filter stays as typed; any other joined word becomes a phrase.
      const quote = !bareword.test(run) && wordCharacter.test(run) && !/^-[\p{L}\p{N}_]+$/u.test(run);
      tokens.push({ kind: 'run', text: quote ? `"${run}"` : run, width: run.length });
    }
  }
  return tokens;
}

/**
 * Parentheses must pair up. Checked here, on the query as typed: FTS5 would report the scope put
 * in front of a phrase (`near ":"`), a character the user never wrote.
 */
function checkParentheses(tokens: Token[]): void {
  let depth = 0;
  let at = 0;
  for (const token of tokens) {
    if (token.text === '(') depth += 1;
    else if (token.text === ')') {
      depth -= 1;
      if (depth < 0)
        fail(
          'STRATA_BAD_QUERY',
          `the ) at character ${at + 1} closes no (: remove it, or open one before it`,
        );
    }
    at += token.width;
  }
  if (depth > 0)
    fail('STRATA_BAD_QUERY', `${depth} ( ${depth === 1 ? 'is' : 'are'} not closed: add the missing )`);
}

function joinText(tokens: Token[], start: number, end: number): string {
  let text = '';
  for (let index = start; index < end; index += 1) text += (tokens[index] as Token).text;
  return text;
}

/** `^`? phrase `*`? (`+` `^`? phrase `*`?)…: the end (exclusive) of the phrase starting at `start`. */
function phraseEnd(tokens: Token[], start: number): number {
  let index = start;
  const one = () => {
    if (tokens[index]?.text === '^') index += 1;
    const kind = tokens[index]?.kind;
    if (kind === 'string' || kind === 'run') index += 1;
    let after = index;
    while (tokens[after]?.kind === 'space') after += 1;
    if (tokens[after]?.text === '*') index = after + 1;
  };
  one();
  for (;;) {
    let after = index;
    while (tokens[after]?.kind === 'space') after += 1;
    if (tokens[after]?.text !== '+') return index;
    index = after + 1;
    while (tokens[index]?.kind === 'space') index += 1;
    one();
  }
}

/** The end (exclusive) of a parenthesized group opening at `open`, or the end of the tokens. */
function closingParenthesis(tokens: Token[], open: number): number {
  let depth = 0;
  for (let index = open; index < tokens.length; index += 1) {
    const text = (tokens[index] as Token).text;
    if (text === '(') depth += 1;
    else if (text === ')') {
      depth -= 1;
      if (depth === 0) return index + 1;
    }
  }
  return tokens.length;
}

function scoped(phrase: string, scope: string | undefined, filtered: boolean): string {
  return scope === undefined || filtered ? phrase : `${scope} : ${phrase}`;
}

/** A column filter must be followed by a phrase or a group: `name:` at the end reads as nothing. */
function requireFilterOperand(tokens: Token[], from: number, name: string): void {
  let index = from;
  while (tokens[index]?.kind === 'space') index += 1;
  const token = tokens[index];
  const operand =
    token !== undefined &&
    (token.kind === 'string' ||
      (token.kind === 'run' && !['AND', 'OR', 'NOT'].includes(token.text)) ||
      token.text === '(' ||
      token.text === '^');
  if (!operand) {
    fail(
      'STRATA_BAD_QUERY',
      `${name}: needs what to look for after the colon: ${name}:word, ${name}:prefix* or ${name}:"some words"`,
    );
  }
}
