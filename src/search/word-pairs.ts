import { unicode61WordRanges } from './unicode61-ranges.js';

/**
 * Word pairs (DESIGN "Two-word phrases"): every two adjacent words of a text as one term,
 * `first_second`, in the `search_pairs` table. A two-word phrase is then a single term there,
 * which FTS5 finds and ranks from one doclist, instead of comparing the positions of both words in
 * every row holding them (and doing it again over the whole table for bm25's document count).
 *
 * The words are cut exactly where FTS5's unicode61 cuts them (`unicode61-ranges.ts`); folding case
 * and diacritics is left to the pair table's own tokenizer, the same as the text table's, with `_`
 * added to its word characters so that a pair stays one term.
 */

/**
 * A word whose term is longer than this (a hash, base64…) takes part in no pair; a phrase with one
 * is answered from the text table. Measured on the term as FTS5 folds it (`termLength`), so that
 * every spelling of a word, precomposed or not, is treated alike in texts and in queries.
 */
export const pairWordLengthMax = 64;
/**
 * The version of the pairs this module makes of a text. Bump it with any change to what they are
 * (word ranges, joiner, length limit): an index whose pairs were made otherwise has them made again
 * when the node starts (search-index.ts), since removing a row's pairs needs the very same ones.
 */
export const pairsFormat = 2;
/** Joins the two words of a pair: not a word character to unicode61, so it never occurs inside a word. */
const joiner = '_';

const bmpWord = new Uint8Array(0x10000);
const astralRanges: Array<[number, number]> = [];
for (let index = 0; index < unicode61WordRanges.length; index += 2) {
  const first = unicode61WordRanges[index] as number;
  const last = unicode61WordRanges[index + 1] as number;
  for (let code = first; code <= Math.min(last, 0xffff); code += 1) bmpWord[code] = 1;
  if (last > 0xffff) astralRanges.push([Math.max(first, 0x10000), last]);
}

function isWordCode(code: number): boolean {
  if (code <= 0xffff) return bmpWord[code] === 1;
  let low = 0;
  let high = astralRanges.length - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    const [first, last] = astralRanges[middle] as [number, number];
    if (code < first) high = middle - 1;
    else if (code > last) low = middle + 1;
    else return true;
  }
  return false;
}

/** The words of a text as unicode61 cuts them, unfolded. */
export function wordsOf(text: string): string[] {
  const words: string[] = [];
  let start = -1;
  let index = 0;
  while (index < text.length) {
    const code = text.codePointAt(index) as number;
    const width = code > 0xffff ? 2 : 1;
    if (isWordCode(code)) {
      if (start < 0) start = index;
    } else if (start >= 0) {
      words.push(text.slice(start, index));
      start = -1;
    }
    index += width;
  }
  if (start >= 0) words.push(text.slice(start));
  return words.filter((word) => !foldsAway(word));
}

/**
 * The combining diacritics that `remove_diacritics 2` folds to nothing (asked of FTS5: 25 of
 * them); a "word" made of them alone leaves no term, so it takes no place between its neighbours.
 */
const vanishingClass =
  '[\\u0300-\\u0304\\u0306-\\u030c\\u030f\\u0311\\u031b\\u0323-\\u0328\\u032d\\u032e\\u0330\\u0331]';
const vanishing = new RegExp(`^${vanishingClass}+$`, 'u');
const vanishingMark = new RegExp(`^${vanishingClass}$`, 'u');

/** A word that unicode61 folds to nothing, so emits no term for. */
export function foldsAway(word: string): boolean {
  return vanishing.test(word);
}

/**
 * The length of a word's term as FTS5 folds it: its code points, less the diacritics folded to
 * nothing (every other code point folds to exactly one).
 */
export function termLength(word: string): number {
  let length = 0;
  for (const character of word) if (!vanishingMark.test(character)) length += 1;
  return length;
}

/** Short enough to take part in a pair (the UTF-16 length bounds the term's, so most words need no count). */
function pairable(word: string): boolean {
  return word.length <= pairWordLengthMax || termLength(word) <= pairWordLengthMax;
}

/** The pair terms of a text, space-separated, for `search_pairs`. */
export function pairsText(text: string): string {
  const words = wordsOf(text);
  const pairs: string[] = [];
  for (let index = 1; index < words.length; index += 1) {
    const first = words[index - 1] as string;
    const second = words[index] as string;
    if (pairable(first) && pairable(second)) pairs.push(`${first}${joiner}${second}`);
  }
  return pairs.join(' ');
}

/**
 * For a query that is exactly one FTS5 phrase of two words (`"the year"`), the FTS5 expression of
 * its pair term in `search_pairs`; undefined for any other query.
 */
export function phrasePairExpression(q: string | undefined): string | undefined {
  const phrase = /^\s*"([^"]*)"\s*$/.exec(q ?? '');
  if (!phrase) return undefined;
  const words = wordsOf(phrase[1] as string);
  if (words.length !== 2) return undefined;
  const [first, second] = words as [string, string];
  if (!pairable(first) || !pairable(second)) return undefined;
  // The body's pairs only: the fields column's pairs hold JSON field names (documents.ts).
  return `body : "${first}${joiner}${second}"`;
}
