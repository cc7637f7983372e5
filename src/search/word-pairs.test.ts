import Database from 'better-sqlite3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pairTokenizer, textTokenizer } from './schema.js';
import { unicode61WordRanges } from './unicode61-ranges.js';
import { foldsAway, pairsText, pairWordLengthMax, phrasePairExpression, wordsOf } from './word-pairs.js';

/** The terms FTS5 makes of `text` with the text tables' tokenizer, in order. */
function termsOf(text: string): string[] {
  const db = new Database(':memory:');
  try {
    db.exec(`CREATE VIRTUAL TABLE probe USING fts5(x, ${textTokenizer});
             CREATE VIRTUAL TABLE probe_terms USING fts5vocab(probe, 'instance');`);
    db.prepare('INSERT INTO probe (rowid, x) VALUES (1, ?)').run(text);
    return db.prepare('SELECT term FROM probe_terms ORDER BY offset').pluck().all() as string[];
  } finally {
    db.close();
  }
}

/**
 * Every code point FTS5's unicode61 keeps inside a word, asked of FTS5 itself: in `q<c>q`, a word
 * character leaves one term, a separator leaves `q` twice. One document per plane of 65,536.
 */
function probeUnicode61(): number[] {
  const ranges: number[] = [];
  let open = -1;
  const close = (code: number) => {
    if (open >= 0) ranges.push(open, code - 1);
    open = -1;
  };
  const isSurrogate = (code: number) => code >= 0xd800 && code <= 0xdfff;
  for (let plane = 0; plane < 0x110000; plane += 0x10000) {
    const codes: number[] = [];
    for (let code = plane; code < plane + 0x10000; code += 1) codes.push(code);
    const terms = termsOf(
      codes
        .filter((code) => !isSurrogate(code))
        .map((code) => `q${String.fromCodePoint(code)}q`)
        .join(' '),
    );
    let at = 0;
    for (const code of codes) {
      // Lone surrogates never occur in a JavaScript string of text; they count as separators.
      const separator = isSurrogate(code) || (terms[at] === 'q' && terms[at + 1] === 'q');
      if (!isSurrogate(code)) at += separator ? 2 : 1;
      if (separator) close(code);
      else if (open < 0) open = code;
    }
    expect(at, `every probe of plane ${plane / 0x10000} accounted for`).toBe(terms.length);
  }
  close(0x110000);
  return ranges;
}

/** A scratch pair of tables like search_text and search_pairs, holding `texts` as rows 1…n. */
function indexed(texts: string[]) {
  const db = new Database(':memory:');
  db.exec(`CREATE VIRTUAL TABLE text USING fts5(body, ${textTokenizer});
           CREATE VIRTUAL TABLE pairs USING fts5(body, ${pairTokenizer});`);
  const insertText = db.prepare('INSERT INTO text (rowid, body) VALUES (?, ?)');
  const insertPairs = db.prepare('INSERT INTO pairs (rowid, body) VALUES (?, ?)');
  texts.forEach((text, index) => {
    insertText.run(index + 1, text);
    insertPairs.run(index + 1, pairsText(text));
  });
  const byPhrase = db.prepare('SELECT rowid FROM text WHERE text MATCH ? ORDER BY rowid').pluck();
  const byPair = db.prepare('SELECT rowid FROM pairs WHERE pairs MATCH ? ORDER BY rowid').pluck();
  return {
    phrase: (phrase: string) => byPhrase.all(phrase) as number[],
    pair: (expression: string) => byPair.all(expression) as number[],
    close: () => db.close(),
  };
}

/** Pieces that test where unicode61 cuts and what it folds: case, diacritics, marks, scripts, emoji. */
const pieces = [
  'the',
  'Year',
  'HELP',
  'café',
  'cafe\u0301',
  'naïve',
  'Øre',
  'straße',
  '你好',
  '世界',
  '😀',
  'a\u0305b',
  '\u0301',
  '\u0301\u0323',
  '\u07fd',
  'İstanbul',
  'ﬁne',
  'x_y',
  "don't",
  '3.14',
  'Ⅻ',
  'ǅ',
  'e\u0300\u0301',
  'ꙮ',
  '𝒜',
  'ᵃ',
  '\u0378',
];
const separators = [' ', ', ', '\n', '—', '·', '\u00a0', '', '\t', '"', '\u200d', '\u00ad'];

describe('word pairs', () => {
  it('cut words exactly where FTS5 unicode61 does (the shipped ranges are FTS5’s own)', () => {
    const probed = probeUnicode61();
    if (probed.join(',') !== unicode61WordRanges.join(',')) {
      console.log(
        `unicode61 disagrees with unicode61-ranges.ts; the ranges it uses:\n${JSON.stringify(probed)}`,
      );
    }
    expect(probed).toEqual([...unicode61WordRanges]);
  }, 60_000);

  it('drops exactly the words FTS5 folds to nothing: combining marks that are all diacritics it removes', () => {
    // Each combining mark that is a word character, alone between two "00" words.
    const marks: string[] = [];
    for (let code = 0; code < 0x110000; code += 1) {
      if (code >= 0xd800 && code <= 0xdfff) continue;
      const mark = String.fromCodePoint(code);
      if (/^\p{M}$/u.test(mark) && wordsOf(`q${mark}q`).length === 1) marks.push(mark);
    }
    const terms = termsOf(`${marks.map((mark) => `00 ${mark}`).join(' ')} 00`);
    const vanished: string[] = [];
    let at = 0;
    for (const mark of marks) {
      expect(terms[at]).toBe('00');
      at += 1;
      if (terms[at] === '00') vanished.push(mark);
      else at += 1;
    }
    expect(vanished.length).toBeGreaterThan(0);
    expect(marks.filter(foldsAway)).toEqual(vanished);
    expect(wordsOf('the \u0301 year')).toEqual(['the', 'year']);
    expect(wordsOf('the \u07fd year')).toEqual(['the', '\u07fd', 'year']);
  });

  it('splits a text into its words and joins each two neighbours into one pair term', () => {
    expect(wordsOf('The year, 1999 — café!')).toEqual(['The', 'year', '1999', 'café']);
    expect(pairsText('The year, 1999 — café!')).toEqual('The_year year_1999 1999_café');
    expect(pairsText('one')).toBe('');
    expect(pairsText('')).toBe('');
    // A word too long for a pair (a hash) breaks the chain on both sides.
    const hash = 'f'.repeat(pairWordLengthMax + 1);
    expect(pairsText(`see ${hash} here and there`)).toBe('here_and and_there');
  });

  it('measures a word by its folded term, so every spelling of a long word pairs alike', () => {
    // 64 code points and 64 UTF-16 units; the same term written with combining accents (128 units);
    // 64 astral code points (128 units).
    const precomposed = 'é'.repeat(pairWordLengthMax);
    const decomposed = 'e\u0301'.repeat(pairWordLengthMax);
    const astral = '𝒜'.repeat(pairWordLengthMax);
    const index = indexed([`the ${decomposed}`, `the ${precomposed}`, `the ${astral}`]);
    try {
      for (const [spelling, rows] of [
        [precomposed, [1, 2]],
        [decomposed, [1, 2]],
        [astral, [3]],
      ] as const) {
        const phrase = `"the ${spelling}"`;
        expect(index.phrase(phrase)).toEqual(rows);
        expect(index.pair(phrasePairExpression(phrase) as string), phrase).toEqual(rows);
      }
      // One more and no spelling pairs: such a phrase goes to the text table.
      expect(phrasePairExpression(`"the ${decomposed}e"`)).toBeUndefined();
      expect(pairsText(`the ${precomposed}é`)).toBe('');
    } finally {
      index.close();
    }
  });

  it('answers for a query that is one phrase of exactly two words, and only then', () => {
    expect(phrasePairExpression('"the year"')).toBe('body : "the_year"');
    expect(phrasePairExpression('  "Café,  au"  ')).toBe('body : "Café_au"');
    for (const q of [
      undefined,
      '',
      'the year',
      '"the"',
      '"the year ends"',
      '"the year" OR night',
      '"the year"*',
      'body:"the year"',
      '"the" "year"',
      `"the ${'y'.repeat(pairWordLengthMax + 1)}"`,
    ])
      expect(phrasePairExpression(q), String(q)).toBeUndefined();
  });

  it('finds exactly the rows FTS5 finds for the same two-word phrase, on random texts', () => {
    const piece = fc.constantFrom(...pieces);
    const separator = fc.constantFrom(...separators);
    const text = fc
      .array(fc.tuple(piece, separator), { minLength: 1, maxLength: 12 })
      .map((parts) => parts.map(([word, gap]) => word + gap).join(''));
    let compared = 0;
    fc.assert(
      fc.property(
        fc.array(text, { minLength: 1, maxLength: 60 }),
        fc.array(fc.tuple(piece, piece)),
        (texts, asked) => {
          const index = indexed(texts);
          try {
            // Every neighbouring pair of the texts (each a two-word phrase), plus random ones (most
            // of which match nothing, and some of which are not two words).
            const neighbours = texts.flatMap((body) => {
              const words = wordsOf(body);
              return words.slice(1).map((word, at) => `"${words[at]} ${word}"`);
            });
            for (const phrase of neighbours) expect(phrasePairExpression(phrase), phrase).toBeDefined();
            const phrases = [...neighbours, ...asked.map(([first, second]) => `"${first} ${second}"`)];
            for (const phrase of phrases) {
              const expression = phrasePairExpression(phrase);
              if (expression === undefined) continue;
              expect(index.pair(expression), phrase).toEqual(index.phrase(phrase));
              compared += 1;
            }
          } finally {
            index.close();
          }
        },
      ),
      { numRuns: 200 },
    );
    expect(compared).toBeGreaterThan(1000);
  });
});
