import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { documentText, kindOfKey, locationOfKey } from './search-documents.mjs';
import { mulberry32, seedOf } from './search-random.mjs';

/**
 * The order in which keys are created and edited. Each version either creates a key or edits one;
 * edits favour recently created keys (work in progress) and a small set of hot keys (config files,
 * entry points) that collect dozens of versions. No key appears twice in one commit (Strata
 * refuses that), so the plan is cut into commits of `commitOps` here.
 */
/** Share of versions that create a key: ~2.9 versions per key, so versions=all ≈ 2.9 × current. */
const newKeyShare = 0.35;
/** Share of edits that go to the hot keys. */
const hotEditShare = 0.03;
/** The first keys created are the hot ones. */
const hotKeys = 300;
/** Keys created before the first edit, so early edits have something to pick from. */
const initialKeys = 100;
/** Draws of an edit target before giving up on a commit crowded with recent keys. */
const editAttemptsMax = 4;

export function* versionPlan({ count, commitOps, seed }) {
  const random = mulberry32(seedOf(seed, 0x91a4));
  const revisions = [];
  let inCommit = new Set();
  for (let index = 0; index < count; index += 1) {
    if (index % commitOps === 0) inCommit = new Set();
    const keys = revisions.length;
    let keyIndex = keys;
    if (keys >= initialKeys && random() >= newKeyShare) {
      // A key already in this commit is drawn again a few times, then a new key is created instead.
      for (let attempt = 0; attempt < editAttemptsMax && keyIndex === keys; attempt += 1) {
        const candidate =
          random() < hotEditShare
            ? Math.floor(random() * Math.min(hotKeys, keys))
            : // The cube skews towards the newest keys, with a tail reaching the oldest.
              keys - 1 - Math.floor(keys * random() ** 3);
        if (!inCommit.has(candidate)) keyIndex = candidate;
      }
    }
    if (keyIndex === keys) revisions.push(0);
    else revisions[keyIndex] += 1;
    inCommit.add(keyIndex);
    yield { keyIndex, revision: revisions[keyIndex] };
  }
}

/** Lines buffered before a write: large enough that the stream is not called a million times. */
const linesPerChunk = 2000;

/**
 * Writes the corpus as NDJSON, one version per line in commit order:
 * { keyIndex, revision, bucket, key, contentType, kind, text }.
 * Returns what the rest of the benchmark needs to know about it.
 */
export async function writeCorpus({ path, count, commitOps, seed, onProgress }) {
  const output = createWriteStream(path);
  const lastRevision = [];
  const byKind = { text: 0, json: 0, javascript: 0 };
  let bytes = 0;
  let lines = [];
  let written = 0;
  const flush = async () => {
    if (lines.length === 0) return;
    if (!output.write(`${lines.join('\n')}\n`)) await once(output, 'drain');
    lines = [];
  };
  for (const { keyIndex, revision } of versionPlan({ count, commitOps, seed })) {
    const text = documentText(seed, keyIndex, revision);
    const kind = kindOfKey(keyIndex);
    byKind[kind] += 1;
    bytes += Buffer.byteLength(text);
    lastRevision[keyIndex] = revision;
    lines.push(JSON.stringify({ keyIndex, revision, ...locationOfKey(keyIndex), kind, text }));
    written += 1;
    if (lines.length === linesPerChunk) {
      await flush();
      onProgress?.(written);
    }
  }
  await flush();
  output.end();
  await once(output, 'finish');
  return { path, count, commitOps, keys: lastRevision.length, lastRevision, byKind, textBytes: bytes };
}

/** The corpus's records in order, as parsed objects. */
export async function* readCorpus(path) {
  const lines = createInterface({
    input: createReadStream(path, { highWaterMark: 1024 * 1024 }),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  for await (const line of lines) if (line.length > 0) yield JSON.parse(line);
}
