import { type Canonical, canonicalEncode } from './canonical.js';
import { fail } from './errors.js';
import { sha256 } from './hash.js';
import { isHlc } from './hlc.js';
import {
  type BlobId,
  type CommitId,
  type Hlc,
  isNodeId,
  isSha256Hex,
  isVersionId,
  type NodeId,
  type VersionId,
} from './ids.js';
import { isBucketName, isSystemBucket } from './names.js';

export type OpKind = 'put' | 'delete' | 'retract';

/** One write inside a commit (DESIGN §2). Optional members are absent, never `undefined`, once encoded. */
export interface Op {
  kind: OpKind;
  bucket: string;
  key: string;
  /** The versions this write supersedes: what the writer saw. */
  parents: VersionId[];
  /** put only */
  blob?: BlobId;
  /** put only */
  contentType?: string;
  /** put only: the blob's size in bytes, so history can show it without reading the blob. */
  size?: number;
  effectiveAt: number;
  refs?: VersionId[];
  /** retract only: the version withdrawn. */
  target?: VersionId;
}

export interface Commit {
  origin: NodeId;
  seq: number;
  hlc: Hlc;
  author?: string;
  message?: string;
  ops: Op[];
}

/** Bounds on what one commit may hold, so that a peer or client cannot make a node allocate without limit. */
export const opsPerCommitMax = 10_000;
export const messageBytesMax = 64 * 1024;
export const contentTypeBytesMax = 256;

/**
 * The canonical encoding of a commit (canonical.ts), written out member by member in sorted key
 * order: the generic encoder sorts every object's keys and builds arrays of parts, and this runs
 * twice per write (encode, then the check before appending), so the write path uses this one.
 * Anything outside the commit's typed shape (a caller's stray type) goes to the generic encoder,
 * whose output this always equals (commit.test.ts checks that on random commits).
 */
export function encodeCommit(commit: Commit): string {
  const fast = encodeCommitFast(commit);
  return fast ?? canonicalEncode(genericCommit(commit));
}

const quote = JSON.stringify;

/** The member-by-member encoding, or undefined for a value outside the typed shape (exported for its test). */
export function encodeCommitFast(commit: Commit): string | undefined {
  const { origin, seq, hlc, author, message, ops } = commit;
  if (typeof origin !== 'string' || typeof hlc !== 'string' || !Number.isSafeInteger(seq)) return undefined;
  if (!Array.isArray(ops)) return undefined;
  const authorMember = stringMember('author', author, ',');
  const messageMember = stringMember('message', message, ',');
  if (authorMember === undefined || messageMember === undefined) return undefined;
  // Keys in code-unit order: author, hlc, message, ops, origin, seq.
  let out = `{${authorMember}"hlc":${quote(hlc)},${messageMember}"ops":[`;
  for (let index = 0; index < ops.length; index++) {
    const op = encodeOpFast(ops[index] as Op);
    if (op === undefined) return undefined;
    out += index === 0 ? op : `,${op}`;
  }
  return `${out}],"origin":${quote(origin)},"seq":${seq}}`;
}

/** Keys in code-unit order: blob, bucket, contentType, effectiveAt, key, kind, parents, refs, size, target. */
function encodeOpFast(op: Op): string | undefined {
  const { kind, bucket, key, parents, blob, contentType, size, effectiveAt, refs, target } = op;
  if (typeof kind !== 'string' || typeof bucket !== 'string' || typeof key !== 'string') return undefined;
  if (!Number.isSafeInteger(effectiveAt)) return undefined;
  const parentList = stringList(parents);
  const blobMember = stringMember('blob', blob, ',');
  const contentTypeMember = stringMember('contentType', contentType, ',');
  const targetMember = stringMember('target', target, '');
  if (parentList === undefined || blobMember === undefined) return undefined;
  if (contentTypeMember === undefined || targetMember === undefined) return undefined;
  let out = `{${blobMember}"bucket":${quote(bucket)},${contentTypeMember}`;
  out += `"effectiveAt":${effectiveAt},"key":${quote(key)},"kind":${quote(kind)},"parents":${parentList}`;
  if (refs !== undefined) {
    const refList = stringList(refs);
    if (refList === undefined) return undefined;
    out += `,"refs":${refList}`;
  }
  if (size !== undefined) {
    if (!Number.isSafeInteger(size)) return undefined;
    out += `,"size":${size}`;
  }
  if (targetMember !== '') out += `,${targetMember}`;
  return `${out}}`;
}

/** `"name":"value"` and `after` for a string, '' for an absent member, undefined for anything else. */
function stringMember(name: string, value: unknown, after: string): string | undefined {
  if (value === undefined) return '';
  return typeof value === 'string' ? `"${name}":${quote(value)}${after}` : undefined;
}

function stringList(list: unknown): string | undefined {
  if (!Array.isArray(list)) return undefined;
  let out = '[';
  for (let index = 0; index < list.length; index++) {
    const item = list[index];
    if (typeof item !== 'string') return undefined;
    out += index === 0 ? quote(item) : `,${quote(item)}`;
  }
  return `${out}]`;
}

/** The commit as the generic canonical encoder takes it: known members only. */
export function genericCommit(commit: Commit): Canonical {
  return {
    origin: commit.origin,
    seq: commit.seq,
    hlc: commit.hlc,
    author: commit.author,
    message: commit.message,
    ops: commit.ops.map((op) => ({
      kind: op.kind,
      bucket: op.bucket,
      key: op.key,
      parents: op.parents,
      blob: op.blob,
      contentType: op.contentType,
      size: op.size,
      effectiveAt: op.effectiveAt,
      refs: op.refs,
      target: op.target,
    })),
  };
}

export function commitId(commit: Commit): CommitId {
  return sha256(encodeCommit(commit)) as CommitId;
}

/** Parses and checks a commit's encoding, as received from a peer or read from disk, against its claimed id. */
export function decodeCommit(encoded: string, expectedId: string): Commit {
  if (sha256(encoded) !== expectedId) {
    fail('STRATA_BAD_REQUEST', `commit ${expectedId.slice(0, 12)}… does not match its content`);
  }
  return parseCanonicalCommit(encoded);
}

/** Parses a commit's encoding and checks its shape and that it is canonical; the id is not checked. */
export function parseCanonicalCommit(encoded: string): Commit {
  let parsed: unknown;
  try {
    parsed = JSON.parse(encoded);
  } catch {
    fail('STRATA_BAD_REQUEST', 'commit is not valid JSON');
  }
  const commit = checkCommitShape(parsed);
  if (encodeCommit(commit) !== encoded) fail('STRATA_BAD_REQUEST', 'commit is not in canonical form');
  return commit;
}

/** Structural validation of an untrusted commit. Returns a commit with only the known members. */
export function checkCommitShape(value: unknown): Commit {
  const bad = (why: string): never => fail('STRATA_BAD_REQUEST', `malformed commit: ${why}`);
  if (!isRecord(value)) bad('not an object');
  const input = value as Record<string, unknown>;
  const { origin, seq, hlc, author, message, ops } = input;
  if (typeof origin !== 'string' || !isNodeId(origin)) bad('origin must be a node id');
  if (!Number.isSafeInteger(seq) || (seq as number) < 1) bad('seq must be a positive integer');
  if (typeof hlc !== 'string' || !isHlc(hlc)) bad('hlc is malformed');
  if (author !== undefined && (typeof author !== 'string' || author.length > 256))
    bad('author must be a short string');
  if (
    message !== undefined &&
    (typeof message !== 'string' || Buffer.byteLength(message) > messageBytesMax)
  ) {
    bad(`message must be a string of at most ${messageBytesMax} bytes`);
  }
  if (!Array.isArray(ops) || ops.length === 0 || ops.length > opsPerCommitMax) {
    bad(`ops must be a list of 1–${opsPerCommitMax} operations`);
  }
  const commit: Commit = {
    origin: origin as NodeId,
    seq: seq as number,
    hlc: hlc as Hlc,
    ops: (ops as unknown[]).map((op, index) => checkOpShape(op, index, bad)),
  };
  if (author !== undefined) commit.author = author as string;
  if (message !== undefined) commit.message = message as string;
  return commit;
}

function checkOpShape(value: unknown, index: number, bad: (why: string) => never): Op {
  const where = `op ${index}`;
  if (!isRecord(value)) bad(`${where} is not an object`);
  const input = value as Record<string, unknown>;
  const { kind, bucket, key, parents, blob, contentType, size, effectiveAt, refs, target } = input;
  if (kind !== 'put' && kind !== 'delete' && kind !== 'retract') bad(`${where} has an unknown kind`);
  if (typeof bucket !== 'string' || !(isBucketName(bucket) || isSystemBucket(bucket))) bad(`${where} bucket`);
  if (typeof key !== 'string' || key.length === 0 || Buffer.byteLength(key) > 1024) bad(`${where} key`);
  if (!isVersionList(parents)) bad(`${where} parents`);
  if (!Number.isSafeInteger(effectiveAt) || (effectiveAt as number) < 0) bad(`${where} effectiveAt`);
  const op: Op = {
    kind: kind as OpKind,
    bucket: bucket as string,
    key: key as string,
    parents: parents as VersionId[],
    effectiveAt: effectiveAt as number,
  };
  if (kind === 'put') {
    if (typeof blob !== 'string' || !isSha256Hex(blob)) bad(`${where} put needs a blob hash`);
    if (typeof contentType !== 'string' || Buffer.byteLength(contentType) > contentTypeBytesMax) {
      bad(`${where} contentType`);
    }
    if (!Number.isSafeInteger(size) || (size as number) < 0) bad(`${where} size`);
    op.blob = blob as BlobId;
    op.contentType = contentType as string;
    op.size = size as number;
  } else if (blob !== undefined || contentType !== undefined || size !== undefined) {
    bad(`${where} only a put carries a blob`);
  }
  if (kind === 'retract') {
    if (typeof target !== 'string' || !isVersionId(target)) bad(`${where} retract needs a target version`);
    op.target = target as VersionId;
  } else if (target !== undefined) {
    bad(`${where} only a retract has a target`);
  }
  if (refs !== undefined) {
    if (!isVersionList(refs)) bad(`${where} refs`);
    op.refs = refs as VersionId[];
  }
  return op;
}

function isVersionList(value: unknown): boolean {
  return (
    Array.isArray(value) &&
    value.length <= opsPerCommitMax &&
    value.every((v) => typeof v === 'string' && isVersionId(v))
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const originMember = '"origin":"';

/**
 * The origin named by a commit's canonical encoding, without parsing it: the members are sorted,
 * so `origin` is the top level's next-to-last member, and a quote inside any string is escaped, so
 * the last `"origin":"` is that member. Undefined when the text holds no well-formed origin (it is
 * not a commit; decodeCommit says why).
 */
export function originOfEncoded(encoded: string): NodeId | undefined {
  const at = encoded.lastIndexOf(originMember);
  if (at < 0) return undefined;
  const start = at + originMember.length;
  const origin = encoded.slice(start, start + 16);
  return encoded.charCodeAt(start + 16) === 34 && isNodeId(origin) ? origin : undefined;
}
