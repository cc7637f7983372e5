import { functionName, sampleSentenceWords } from './search-documents.mjs';
import { between, mulberry32, pick, seedOf, shuffle } from './search-random.mjs';
import { markers, vocabulary } from './search-vocabulary.mjs';

/** Hits per query, as a first page of results in the UI. */
export const hitsPerQuery = 20;

/**
 * Word ranks for single-term queries. "Common" skips the top 50 (the, of, and…: nobody searches
 * for them alone) and stops where words still match ~5% of the text; "mid" is the rest of the
 * vocabulary; "rare" terms are the marker words (~0.03% of versions each).
 */
const commonRanks = [50, 300];
const midRanks = [300, vocabulary.length - 1];
/** Phrase words are drawn from generated sentences; pairs of two top-100 words are drawn again. */
const phraseStopRank = 100;
const phraseAttemptsMax = 20;
/** Prefix queries cut words of these ranks (a word a user would start typing) to 3 or 4 letters. */
const prefixRanks = [20, 2000];

/** Time windows the range queries pick from, each covering this share of all versions. */
const windowCount = 20;
const windowShare = 0.05;

/**
 * The query mix: how many of each class in 1,000 queries. Single terms, phrases and prefixes run on
 * current versions (the default), as do identifier queries (kind=code); the range classes add a
 * from/to window; the versions=all classes search every version.
 */
export const queryClasses = [
  { name: 'term, common', share: 130 },
  { name: 'term, rare', share: 110 },
  { name: 'phrase', share: 120 },
  { name: 'prefix', share: 120 },
  { name: 'identifier def=', share: 100 },
  { name: 'identifier ref=', share: 80 },
  { name: 'time range', share: 120 },
  { name: 'time range, versions=all', share: 100 },
  { name: 'versions=all', share: 120 },
];

const rankOf = new Map(vocabulary.map((word, rank) => [word, rank]));

/**
 * Windows of transaction time over the middle of the build, each holding ~5% of the versions:
 * `from` and `to` are the txTimes Strata recorded at the window's first and last version.
 * `versions` counts the versions inside (ties at the edges make it a little more than 5%).
 */
export function timeWindows(txTimes, seed) {
  const random = mulberry32(seedOf(seed, 0x7173));
  const count = txTimes.length;
  const width = Math.max(1, Math.floor(count * windowShare));
  const windows = [];
  for (let index = 0; index < windowCount; index += 1) {
    const start = between(random, Math.floor(count * 0.1), Math.max(0, Math.floor(count * 0.85) - 1));
    const end = Math.min(count - 1, start + width - 1);
    const from = txTimes[start];
    const to = txTimes[end];
    let versions = 0;
    for (const time of txTimes) if (time >= from && time <= to) versions += 1;
    windows.push({ from, to, versions });
  }
  return windows;
}

function term(random, ranks) {
  return vocabulary[between(random, ranks[0], ranks[1])];
}

/** A term for the range and versions=all classes: common, mid-frequency and rare alike. */
function mixedTerm(random) {
  const draw = random();
  if (draw < 1 / 3) return term(random, commonRanks);
  if (draw < 2 / 3) return term(random, midRanks);
  return pick(random, markers);
}

function phrase(random) {
  for (let attempt = 0; attempt < phraseAttemptsMax; attempt += 1) {
    const words = sampleSentenceWords(random);
    const at = Math.floor(random() * (words.length - 1));
    const [first, second] = [words[at], words[at + 1]];
    if (rankOf.get(first) >= phraseStopRank || rankOf.get(second) >= phraseStopRank) return [first, second];
  }
  return [term(random, commonRanks), term(random, commonRanks)];
}

function prefix(random) {
  let word = term(random, prefixRanks);
  while (word.length < 5) word = term(random, prefixRanks);
  return word.slice(0, random() < 0.6 ? 3 : 4);
}

/**
 * The same search for PostgreSQL: the GIN index finds the rows, ts_rank orders them (as bm25
 * orders Strata's), the first 20 are kept, and only those get a ts_headline snippet (as only
 * Strata's hits get an FTS5 snippet).
 */
function postgresSql({ column, tsquery, snippetColumn, current, window }) {
  const conditions = [`${column} @@ ${tsquery}`];
  if (current) conditions.push('is_current');
  if (window) conditions.push(`tx_time BETWEEN ${window.from} AND ${window.to}`);
  return [
    `SELECT version, bucket, key, tx_time, rank,`,
    `ts_headline('simple', ${snippetColumn}, ${tsquery}, 'MaxFragments=1, MaxWords=16, MinWords=8, StartSel=«, StopSel=»')`,
    `FROM (SELECT version, bucket, key, tx_time, ${snippetColumn}, ts_rank(${column}, ${tsquery}) AS rank`,
    `FROM versions WHERE ${conditions.join(' AND ')} ORDER BY rank DESC LIMIT ${hitsPerQuery}) AS hits`,
    'ORDER BY rank DESC',
  ].join(' ');
}

function textQuery({ className, q, tsquery, versions, window }) {
  const strata = { q, kind: 'text', versions, limit: hitsPerQuery };
  if (window) Object.assign(strata, { from: window.from, to: window.to });
  return {
    className,
    label: window ? `${q} [${window.from}..${window.to}]` : q,
    strata,
    postgres: postgresSql({
      column: 'tsv',
      tsquery,
      snippetColumn: 'body',
      current: versions === 'current',
      window,
    }),
  };
}

/**
 * `def=`/`ref=` as Strata reads them: the identifier's whole-name term (identifierTerms from
 * src/search/identifiers.ts) in the defined or referenced column.
 */
function identifierQuery({ className, name, use, identifierTerms }) {
  const [whole] = identifierTerms(name);
  const strata = { kind: 'code', versions: 'current', limit: hitsPerQuery, [use]: name };
  return {
    className,
    label: `${use}=${name}`,
    strata,
    postgres: postgresSql({
      column: 'code_tsv',
      tsquery: `to_tsquery('simple', '${whole}:${use === 'def' ? 'A' : 'B'}')`,
      snippetColumn: use === 'def' ? 'defined' : 'referenced',
      current: true,
    }),
  };
}

function queryOf(className, random, windows, identifierTerms) {
  const simple = (word) => `to_tsquery('simple', '${word}')`;
  switch (className) {
    case 'term, common':
    case 'term, rare': {
      const word = className === 'term, common' ? term(random, commonRanks) : pick(random, markers);
      return textQuery({ className, q: word, tsquery: simple(word), versions: 'current' });
    }
    case 'phrase': {
      const words = phrase(random).join(' ');
      return textQuery({
        className,
        q: `"${words}"`,
        tsquery: `phraseto_tsquery('simple', '${words}')`,
        versions: 'current',
      });
    }
    case 'prefix': {
      const start = prefix(random);
      return textQuery({
        className,
        q: `${start}*`,
        tsquery: `to_tsquery('simple', '${start}:*')`,
        versions: 'current',
      });
    }
    case 'identifier def=':
    case 'identifier ref=':
      return identifierQuery({
        className,
        name: functionName(random),
        use: className === 'identifier def=' ? 'def' : 'ref',
        identifierTerms,
      });
    case 'time range':
    case 'time range, versions=all': {
      const word = mixedTerm(random);
      return textQuery({
        className,
        q: word,
        tsquery: simple(word),
        versions: className === 'time range' ? 'current' : 'all',
        window: pick(random, windows),
      });
    }
    case 'versions=all': {
      const word = mixedTerm(random);
      return textQuery({ className, q: word, tsquery: simple(word), versions: 'all' });
    }
    default:
      throw new Error(`unknown query class ${className}`);
  }
}

/**
 * `count` queries in the proportions of `queryClasses`, shuffled so that no class runs while the
 * caches are colder or warmer than the others'. `identifierTerms` is Strata's own (dist/).
 */
export function buildQueries({ count, seed, windows, identifierTerms }) {
  const random = mulberry32(seedOf(seed, 0x9e7));
  const totalShare = queryClasses.reduce((sum, { share }) => sum + share, 0);
  const queries = [];
  queryClasses.forEach(({ name, share }, index) => {
    const last = index === queryClasses.length - 1;
    const classCount = last ? count - queries.length : Math.round((count * share) / totalShare);
    for (let made = 0; made < classCount; made += 1)
      queries.push(queryOf(name, random, windows, identifierTerms));
  });
  return shuffle(random, queries);
}
