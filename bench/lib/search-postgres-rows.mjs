import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { readCorpus } from './search-corpus.mjs';

/** Rows buffered before a write (as in search-corpus.mjs). */
const rowsPerChunk = 2000;

/** COPY's text format: backslash escapes for the characters that delimit fields and rows. */
function field(value) {
  if (value === undefined || value === null) return '\\N';
  return String(value).replace(/[\\\t\n\r]/g, (character) => {
    switch (character) {
      case '\\':
        return '\\\\';
      case '\t':
        return '\\t';
      case '\n':
        return '\\n';
      default:
        return '\\r';
    }
  });
}

/**
 * Writes the corpus as PostgreSQL rows, with the version ids and transaction times Strata assigned,
 * so both systems hold the same versions at the same times. The text columns are what Strata's index
 * holds, computed by Strata's own code (`indexedDocument`): for JSON the string values, for
 * JavaScript the source plus the identifiers acorn finds. Current = the key's last version, which is
 * what Strata's winner rule picks here (every version succeeds the previous one, none is scheduled).
 */
export async function writePostgresRows({ corpus, versionIds, txTimes, path, documents }) {
  const output = createWriteStream(path);
  let lines = [];
  let index = 0;
  for await (const record of readCorpus(corpus.path)) {
    const document = documents.indexedDocument(
      record.text,
      documents.documentKind(record.contentType, record.key),
    );
    const code = record.kind === 'javascript';
    lines.push(
      [
        versionIds[index],
        record.bucket,
        record.key,
        record.kind,
        txTimes[index],
        corpus.lastRevision[record.keyIndex] === record.revision ? 't' : 'f',
        document.body,
        code ? document.defined : undefined,
        code ? document.referenced : undefined,
      ]
        .map(field)
        .join('\t'),
    );
    index += 1;
    if (lines.length === rowsPerChunk) {
      if (!output.write(`${lines.join('\n')}\n`)) await once(output, 'drain');
      lines = [];
    }
  }
  if (lines.length > 0) output.write(`${lines.join('\n')}\n`);
  output.end();
  await once(output, 'finish');
  return index;
}
