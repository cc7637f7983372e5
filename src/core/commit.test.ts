import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { strataErrorCode } from '../../test/support/errors.js';
import { canonicalEncode } from './canonical.js';
import {
  type Commit,
  checkCommitShape,
  commitId,
  decodeCommit,
  encodeCommit,
  encodeCommitFast,
  genericCommit,
  originOfEncoded,
} from './commit.js';
import { StrataError } from './errors.js';
import { sha256 } from './hash.js';
import { formatHlc } from './hlc.js';
import { type BlobId, type CommitId, type NodeId, versionId } from './ids.js';

const origin = '0123456789abcdef' as NodeId;
const hlc = formatHlc({ wall: 1_767_225_600_000, counter: 3, node: origin });
const blob = sha256('hello') as BlobId;
const parent = versionId(sha256('parent') as CommitId, 0);

function sample(): Commit {
  return {
    origin,
    seq: 1,
    hlc,
    author: 'ada',
    message: 'first',
    ops: [
      {
        kind: 'put',
        bucket: 'photos',
        key: 'cat.jpg',
        parents: [parent],
        blob,
        contentType: 'image/jpeg',
        size: 5,
        effectiveAt: 1_767_225_600_000,
      },
      { kind: 'delete', bucket: 'photos', key: 'dog.jpg', parents: [], effectiveAt: 1_767_225_600_000 },
      {
        kind: 'retract',
        bucket: 'photos',
        key: 'old.jpg',
        parents: [],
        effectiveAt: 1_767_225_600_000,
        target: parent,
      },
    ],
  };
}

/** Encodes an arbitrary object canonically and decodes it under its own (correct) hash. */
function decodeValue(value: unknown): string | undefined {
  const encoded = canonicalEncode(value as never);
  return strataErrorCode(() => decodeCommit(encoded, sha256(encoded)));
}

describe('commitId', () => {
  it('is the sha256 of the canonical encoding', () => {
    const commit = sample();
    expect(commitId(commit)).toBe(sha256(encodeCommit(commit)));
    expect(commitId(commit)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('does not depend on member order or on undefined optional members', () => {
    const commit = sample();
    const reordered = {
      ops: commit.ops.map((op) => ({ ...op, refs: undefined }) as typeof op),
      message: commit.message,
      author: commit.author,
      hlc: commit.hlc,
      seq: commit.seq,
      origin: commit.origin,
    };
    expect(commitId(reordered)).toBe(commitId(commit));
  });

  it('changes when any part of the commit changes', () => {
    const base = commitId(sample());
    const variants: Commit[] = [
      { ...sample(), seq: 2 },
      { ...sample(), message: 'second' },
      { ...sample(), author: undefined },
      { ...sample(), ops: sample().ops.slice(0, 2) },
      { ...sample(), ops: [...sample().ops].reverse() },
      { ...sample(), ops: [{ ...(sample().ops[0] as Commit['ops'][0]), effectiveAt: 1 }] },
    ];
    for (const variant of variants) expect(commitId(variant)).not.toBe(base);
  });

  it('ignores members that are not part of the commit format', () => {
    const withExtra = { ...sample(), extra: 'ignored' } as Commit;
    expect(commitId(withExtra)).toBe(commitId(sample()));
  });
});

describe('decodeCommit', () => {
  it('round-trips an encoded commit', () => {
    const commit = sample();
    const encoded = encodeCommit(commit);
    expect(decodeCommit(encoded, commitId(commit))).toEqual(commit);
  });

  it('rejects a body whose hash does not match the claimed id', () => {
    const commit = sample();
    const encoded = encodeCommit({ ...commit, message: 'tampered' });
    expect(strataErrorCode(() => decodeCommit(encoded, commitId(commit)))).toBe('STRATA_BAD_REQUEST');
    expect(strataErrorCode(() => decodeCommit(encodeCommit(commit), '0'.repeat(64)))).toBe(
      'STRATA_BAD_REQUEST',
    );
  });

  it('rejects a body that is valid but not canonical, even under its own hash', () => {
    const commit = sample();
    const canonical = encodeCommit(commit);
    const pretty = JSON.stringify(JSON.parse(canonical), null, 2);
    const reordered = JSON.stringify({ seq: 1, ...JSON.parse(canonical) });
    const withExtra = canonicalEncode({ ...JSON.parse(canonical), zzz: 1 });
    const withExtraInOp = canonicalEncode({
      ...JSON.parse(canonical),
      ops: [{ ...JSON.parse(canonical).ops[0], note: 'x' }],
    });
    for (const body of [pretty, reordered, withExtra, withExtraInOp]) {
      expect(body).not.toBe(canonical);
      expect(strataErrorCode(() => decodeCommit(body, sha256(body)))).toBe('STRATA_BAD_REQUEST');
    }
  });

  it('rejects a body that is not JSON under its own hash', () => {
    const body = '{"origin":';
    expect(strataErrorCode(() => decodeCommit(body, sha256(body)))).toBe('STRATA_BAD_REQUEST');
  });

  it.each([
    ['not an object', []],
    ['null', null],
    ['origin not a node id', { ...sample(), origin: 'NODE' }],
    ['seq zero', { ...sample(), seq: 0 }],
    ['seq negative', { ...sample(), seq: -1 }],
    ['seq a string', { ...sample(), seq: '1' }],
    ['hlc malformed', { ...sample(), hlc: '123' }],
    ['author too long', { ...sample(), author: 'a'.repeat(257) }],
    ['author not a string', { ...sample(), author: 7 }],
    ['message too many bytes', { ...sample(), message: 'é'.repeat(40_000) }],
    ['no ops', { ...sample(), ops: [] }],
    ['ops not a list', { ...sample(), ops: {} }],
    ['op not an object', { ...sample(), ops: ['put'] }],
    ['unknown kind', { ...sample(), ops: [{ ...sample().ops[1], kind: 'move' }] }],
    ['bad bucket', { ...sample(), ops: [{ ...sample().ops[1], bucket: 'Bad Bucket' }] }],
    ['empty key', { ...sample(), ops: [{ ...sample().ops[1], key: '' }] }],
    ['key over 1024 bytes', { ...sample(), ops: [{ ...sample().ops[1], key: 'é'.repeat(513) }] }],
    ['parents not version ids', { ...sample(), ops: [{ ...sample().ops[1], parents: ['nope'] }] }],
    ['parents missing', { ...sample(), ops: [{ ...sample().ops[1], parents: undefined }] }],
    ['effectiveAt negative', { ...sample(), ops: [{ ...sample().ops[1], effectiveAt: -1 }] }],
    ['effectiveAt missing', { ...sample(), ops: [{ ...sample().ops[1], effectiveAt: undefined }] }],
    ['put without blob', { ...sample(), ops: [{ ...sample().ops[0], blob: undefined }] }],
    ['put with a bad blob', { ...sample(), ops: [{ ...sample().ops[0], blob: 'abc' }] }],
    ['put without size', { ...sample(), ops: [{ ...sample().ops[0], size: undefined }] }],
    ['put with negative size', { ...sample(), ops: [{ ...sample().ops[0], size: -1 }] }],
    ['put without contentType', { ...sample(), ops: [{ ...sample().ops[0], contentType: undefined }] }],
    ['contentType too long', { ...sample(), ops: [{ ...sample().ops[0], contentType: 'x'.repeat(257) }] }],
    ['delete with a blob', { ...sample(), ops: [{ ...sample().ops[1], blob }] }],
    ['retract without target', { ...sample(), ops: [{ ...sample().ops[2], target: undefined }] }],
    ['retract with a bad target', { ...sample(), ops: [{ ...sample().ops[2], target: 'v1' }] }],
    ['put with a target', { ...sample(), ops: [{ ...sample().ops[0], target: parent }] }],
    ['refs not version ids', { ...sample(), ops: [{ ...sample().ops[0], refs: [1] }] }],
  ])('rejects a malformed commit (%s) with STRATA_BAD_REQUEST', (_why, value) => {
    expect(decodeValue(value)).toBe('STRATA_BAD_REQUEST');
    expect(strataErrorCode(() => checkCommitShape(value))).toBe('STRATA_BAD_REQUEST');
  });

  it('accepts system buckets and refs', () => {
    const commit: Commit = {
      ...sample(),
      ops: [{ ...(sample().ops[0] as Commit['ops'][0]), bucket: '_releases', refs: [parent] }],
    };
    expect(decodeCommit(encodeCommit(commit), commitId(commit))).toEqual(commit);
  });

  it('never throws anything but a StrataError on random JSON (property)', () => {
    fc.assert(
      fc.property(fc.json(), (text) => {
        const id = sha256(text);
        try {
          const commit = decodeCommit(text, id);
          expect(commitId(commit)).toBe(id);
        } catch (error) {
          expect(error).toBeInstanceOf(StrataError);
        }
      }),
    );
  });

  it('never throws anything but a StrataError on mutated commits (property)', () => {
    const anything = fc.oneof(
      fc.jsonValue(),
      fc.constant(undefined),
      fc.constant(parent),
      fc.constant(blob),
      fc.constant([parent]),
      fc.integer({ min: -5, max: 5 }),
    );
    const opKeys = [
      'kind',
      'bucket',
      'key',
      'parents',
      'blob',
      'contentType',
      'size',
      'effectiveAt',
      'refs',
      'target',
    ];
    const commitKeys = ['origin', 'seq', 'hlc', 'author', 'message', 'ops'];
    fc.assert(
      fc.property(
        fc.nat({ max: 2 }),
        fc.constantFrom(...opKeys),
        fc.constantFrom(...commitKeys),
        anything,
        anything,
        (opIndex, opKey, commitKey, opValue, commitValue) => {
          const value = JSON.parse(encodeCommit(sample())) as Record<string, unknown>;
          const ops = value.ops as Array<Record<string, unknown>>;
          (ops[opIndex] as Record<string, unknown>)[opKey] = opValue;
          if (commitKey !== 'ops') value[commitKey] = commitValue;
          const text = JSON.stringify(value);
          try {
            const commit = decodeCommit(text, sha256(text));
            expect(encodeCommit(commit)).toBe(text);
          } catch (error) {
            expect(error).toBeInstanceOf(StrataError);
          }
        },
      ),
    );
  });
});

describe('encodeCommit', () => {
  // Any UTF-16 code unit, lone surrogates included (the 'binary' unit leaves them out).
  const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code));
  const text = fc.string({ unit: codeUnit, maxLength: 12 });
  const optional = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: undefined });
  const op = fc.record(
    {
      kind: fc.constantFrom('put', 'delete', 'retract'),
      bucket: text,
      key: text,
      parents: fc.array(text, { maxLength: 3 }),
      blob: optional(text),
      contentType: optional(text),
      size: optional(fc.nat()),
      effectiveAt: fc.nat(),
      refs: optional(fc.array(text, { maxLength: 2 })),
      target: optional(text),
    },
    { requiredKeys: ['kind', 'bucket', 'key', 'parents', 'effectiveAt'] },
  );
  const commit = fc.record(
    {
      origin: text,
      seq: fc.nat(),
      hlc: text,
      author: optional(text),
      message: optional(text),
      ops: fc.array(op, { minLength: 1, maxLength: 3 }),
    },
    { requiredKeys: ['origin', 'seq', 'hlc', 'ops'] },
  );

  it('writes exactly what the generic canonical encoder writes, escapes and lone surrogates included (property)', () => {
    fc.assert(
      fc.property(commit, (value) => {
        const generic = canonicalEncode(genericCommit(value as Commit));
        // The fast path itself, not the fallback encodeCommit would take if it gave up.
        expect(encodeCommitFast(value as Commit)).toBe(generic);
        expect(encodeCommit(value as Commit)).toBe(generic);
      }),
      { numRuns: 2000 },
    );
  });

  it('falls back to the generic encoder for a value outside the typed shape', () => {
    const odd = { ...sample(), author: null } as unknown as Commit;
    expect(encodeCommitFast(odd)).toBeUndefined();
    expect(encodeCommit(odd)).toBe(canonicalEncode(genericCommit(odd)));
    expect(encodeCommit(odd)).toContain('"author":null');
    const unsafe = { ...sample(), seq: 2 ** 60 };
    expect(() => encodeCommit(unsafe)).toThrow(TypeError);
  });
});

describe('originOfEncoded', () => {
  const nodeId = fc.stringMatching(/^[0-9a-f]{16}$/) as fc.Arbitrary<NodeId>;
  // Strings that try to look like an origin member, escaped as the encoding escapes them.
  const decoy = fc.constantFrom('"origin":"', '","origin":"fedcba9876543210"', '\\"origin\\":"', 'x');
  const text = fc
    .array(fc.oneof(decoy, fc.string({ maxLength: 6 })), { maxLength: 4 })
    .map((parts) => parts.join(''));

  it("reads the commit's own origin, whatever its strings hold (property)", () => {
    fc.assert(
      fc.property(nodeId, text, text, text, (id, author, message, key) => {
        const commit: Commit = {
          ...sample(),
          origin: id,
          author,
          message,
          ops: [{ kind: 'delete', bucket: 'photos', key, parents: [], effectiveAt: 1 }],
        };
        expect(originOfEncoded(encodeCommit(commit))).toBe(id);
      }),
      { numRuns: 500 },
    );
  });

  it('is undefined for text that names no well-formed origin', () => {
    expect(originOfEncoded('')).toBeUndefined();
    expect(originOfEncoded('{"origin":"0123"}')).toBeUndefined();
    expect(originOfEncoded('{"origin":"0123456789ABCDEF","seq":1}')).toBeUndefined();
    expect(originOfEncoded('{"origin":"0123456789abcdef0","seq":1}')).toBeUndefined();
    expect(originOfEncoded('{"origin":"0123456789abcdef","seq":1}')).toBe('0123456789abcdef');
  });
});
