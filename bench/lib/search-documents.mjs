import { between, mulberry32, pick, seedOf, zipfSampler } from './search-random.mjs';
import {
  authorNames,
  functionNames,
  markers,
  nouns,
  variableSuffixes,
  verbs,
  vocabulary,
} from './search-vocabulary.mjs';

/**
 * One object of the corpus at one revision, generated from (seed, key, revision) alone, so the
 * corpus needs no storage to be reproduced. A document is a list of blocks (paragraphs, JSON
 * sections, top-level declarations); each edit regenerates one block, so successive versions of a
 * key share most of their text, as real edits do, and a word in an edited block is found in the
 * old versions (versions=all) but not in the current one.
 */

/** Zipf exponent of word frequencies: ~1 in natural language (Zipf's law). */
const wordExponent = 1.0;
/** Identifier use is skewed too (a few helpers are called everywhere), a little less than words. */
const identifierExponent = 0.9;
/** One block in this many carries a marker word: with ~16 markers, each matches ~0.03% of versions. */
const markerOneIn = 2000;

const drawWord = zipfSampler(vocabulary.length, wordExponent);
const drawFunction = zipfSampler(functionNames.length, identifierExponent);

export const documentKinds = ['text', 'json', 'javascript'];

/** Thirds of the keys, by index: text, JSON, JavaScript. */
export function kindOfKey(keyIndex) {
  return documentKinds[keyIndex % 3];
}

export function locationOfKey(keyIndex) {
  switch (kindOfKey(keyIndex)) {
    case 'text':
      return { bucket: 'notes', key: `notes/n${keyIndex}.txt`, contentType: 'text/plain; charset=utf-8' };
    case 'json':
      return { bucket: 'records', key: `records/r${keyIndex}.json`, contentType: 'application/json' };
    default:
      return {
        bucket: 'app',
        key: `src/module${keyIndex}.js`,
        contentType: 'text/javascript; charset=utf-8',
      };
  }
}

export function word(random) {
  return vocabulary[drawWord(random)];
}

/** A function name drawn as the generated modules draw them (popular helpers more often). */
export function functionName(random) {
  return functionNames[drawFunction(random)];
}

function sentence(random, low, high) {
  const words = [];
  const count = between(random, low, high);
  for (let index = 0; index < count; index += 1) words.push(word(random));
  if (random() * markerOneIn < 1) words[Math.floor(random() * words.length)] = pick(random, markers);
  const first = words[0];
  words[0] = first.charAt(0).toUpperCase() + first.slice(1);
  if (count > 9 && random() < 0.4) words[Math.floor(count / 2)] += ',';
  return `${words.join(' ')}.`;
}

/** A few adjacent words as the generator writes them: candidates for phrase queries. */
export function sampleSentenceWords(random) {
  return sentence(random, 6, 14)
    .toLowerCase()
    .replace(/[.,]/g, '')
    .split(' ')
    .filter((token) => !markers.includes(token));
}

function paragraph(random, low, high) {
  const sentences = [];
  const count = between(random, low, high);
  for (let index = 0; index < count; index += 1) sentences.push(sentence(random, 6, 14));
  return sentences.join(' ');
}

const camel = (name) => name.charAt(0).toLowerCase() + name.slice(1);

function variableName(random) {
  return `${camel(pick(random, nouns))}${pick(random, variableSuffixes)}`;
}

/** A function name no earlier block of this module declared or imported (a module rejects duplicates). */
function freshFunctionName(random, used, blockIndex) {
  let name = functionNames[drawFunction(random)];
  if (used.has(name)) name = `${pick(random, verbs)}${pick(random, nouns)}${blockIndex}`;
  if (used.has(name)) name = `${name}V${used.size}`;
  used.add(name);
  return name;
}

function calledName(random, defined) {
  const name = functionNames[drawFunction(random)];
  return defined === name ? `${name}Next` : name;
}

function importsBlock(random, used, keyIndex) {
  const lines = [];
  const modules = between(random, 1, 2);
  for (let index = 0; index < modules; index += 1) {
    const names = [];
    const count = between(random, 1, 3);
    for (let name = 0; name < count; name += 1) {
      const candidate = functionNames[drawFunction(random)];
      if (!used.has(candidate)) {
        used.add(candidate);
        names.push(candidate);
      }
    }
    if (names.length > 0)
      lines.push(`import { ${names.join(', ')} } from './module${(keyIndex * 7 + index * 13) % 9973}.js';`);
  }
  return `${lines.join('\n')}\n`;
}

function functionBlock(random, used, blockIndex) {
  const name = freshFunctionName(random, used, blockIndex);
  const first = variableName(random);
  let second = variableName(random);
  if (second === first) second = `${second}Other`;
  let local = variableName(random);
  if (local === first || local === second) local = `${local}Local`;
  const lines = [
    '/**',
    ` * ${sentence(random, 6, 14)}`,
    ' */',
    `export function ${name}(${first}, ${second}) {`,
    `  const ${local} = ${calledName(random, name)}(${first}.${camel(pick(random, nouns))}, ${second});`,
  ];
  const statements = between(random, 1, 4);
  for (let index = 0; index < statements; index += 1) {
    if (random() < 0.5) {
      lines.push(
        `  if (${local} > ${between(random, 1, 64)}) {`,
        `    // ${sentence(random, 4, 10)}`,
        `    ${calledName(random, name)}(${first}, ${local});`,
        '  }',
      );
    } else {
      lines.push(
        `  ${first}.${camel(pick(random, nouns))} = ${calledName(random, name)}(${local}, ${second});`,
      );
    }
  }
  lines.push(`  return ${calledName(random, name)}(${local}, ${second});`, '}');
  return `${lines.join('\n')}\n`;
}

const classSuffixes = ['Loader', 'Manager', 'System', 'Controller', 'Renderer', 'Pool', 'Store'];

function classBlock(random, used, blockIndex) {
  let name = `${pick(random, nouns)}${pick(random, classSuffixes)}`;
  if (used.has(name)) name = `${name}${blockIndex}`;
  used.add(name);
  const field = variableName(random);
  const parameter = variableName(random);
  const lines = [
    `/** ${sentence(random, 5, 12)} */`,
    `export class ${name} {`,
    '  constructor(options) {',
    '    this.options = options;',
    `    this.${field} = 0;`,
    '  }',
  ];
  const methods = between(random, 1, 2);
  for (let index = 0; index < methods; index += 1) {
    const method = `${pick(random, verbs)}${pick(random, nouns)}`;
    lines.push(
      '',
      `  ${method}(${parameter}) {`,
      `    // ${sentence(random, 4, 10)}`,
      `    this.${field} += 1;`,
      `    return ${calledName(random, method)}(this.options, ${parameter});`,
      '  }',
    );
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

function jsonHeader(random, keyIndex) {
  const tags = [];
  const tagCount = between(random, 2, 4);
  // Tags are topical words: neither the most common nor the rarest.
  for (let index = 0; index < tagCount; index += 1) tags.push(vocabulary[between(random, 100, 1100)]);
  return {
    id: `r${keyIndex}`,
    title: sentence(random, 3, 7).replace(/\.$/, ''),
    author: pick(random, authorNames),
    tags,
    status: pick(random, ['draft', 'review', 'published', 'archived']),
    rating: between(random, 1, 5),
  };
}

function jsonSection(random) {
  return { heading: sentence(random, 2, 5).replace(/\.$/, ''), text: paragraph(random, 1, 3) };
}

/** Blocks per document by kind: sized so documents span ~200 B to ~2 KB. */
const blockCounts = { text: [2, 7], json: [2, 7], javascript: [2, 5] };

/**
 * Which revision of each block the document at `revision` holds: edit j (1-based) rewrote block
 * seedOf(seed, key, j) mod blocks. Linear in the revision, which stays small (hundreds at most).
 */
function blockRevisions(seed, keyIndex, revision, blocks) {
  const revisions = new Uint32Array(blocks);
  for (let edit = 1; edit <= revision; edit += 1) revisions[seedOf(seed, keyIndex, edit, 7) % blocks] = edit;
  return revisions;
}

/** The text of key `keyIndex` at `revision` (0 = its creation). */
export function documentText(seed, keyIndex, revision) {
  const kind = kindOfKey(keyIndex);
  const shape = mulberry32(seedOf(seed, keyIndex, 0xb10c));
  const [low, high] = blockCounts[kind];
  const blocks = between(shape, low, high);
  const revisions = blockRevisions(seed, keyIndex, revision, blocks);
  const blockRandom = (block) => mulberry32(seedOf(seed, keyIndex, block, revisions[block]));
  switch (kind) {
    case 'text': {
      const paragraphs = [];
      for (let block = 0; block < blocks; block += 1) paragraphs.push(paragraph(blockRandom(block), 2, 5));
      return `${paragraphs.join('\n\n')}\n`;
    }
    case 'json': {
      const document = jsonHeader(blockRandom(0), keyIndex);
      document.sections = [];
      for (let block = 1; block < blocks; block += 1) document.sections.push(jsonSection(blockRandom(block)));
      return `${JSON.stringify(document, null, 2)}\n`;
    }
    default: {
      const used = new Set();
      const parts = [importsBlock(blockRandom(0), used, keyIndex)];
      for (let block = 1; block < blocks; block += 1) {
        const random = blockRandom(block);
        parts.push(random() < 0.75 ? functionBlock(random, used, block) : classBlock(random, used, block));
      }
      return parts.join('\n');
    }
  }
}
