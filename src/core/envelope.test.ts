import { describe, expect, it } from 'vitest';
import { strataErrorCode } from '../../test/support/errors.js';
import { type Commit, commitId, encodeCommit } from './commit.js';
import { decodeEnvelope, type Envelope } from './envelope.js';
import { formatHlc } from './hlc.js';
import type { NodeId } from './ids.js';

const origin = '0123456789abcdef' as NodeId;
const commit = (key: string): Commit => ({
  origin,
  seq: 1,
  hlc: formatHlc({ wall: 1_767_225_600_000, counter: 0, node: origin }),
  ops: [{ kind: 'delete', bucket: 'photos', key, parents: [], effectiveAt: 1_767_225_600_000 }],
});
const envelopeOf = (value: Commit): Envelope => ({ id: commitId(value), body: encodeCommit(value) });

describe('decodeEnvelope', () => {
  it('decodes once per envelope object: a second call returns the same commit', () => {
    const envelope = envelopeOf(commit('a'));
    const first = decodeEnvelope(envelope);
    expect(first).toEqual(commit('a'));
    expect(decodeEnvelope(envelope)).toBe(first);
    // An equal envelope in another object is checked on its own.
    const copy = { ...envelope };
    expect(decodeEnvelope(copy)).not.toBe(first);
    expect(decodeEnvelope(copy)).toEqual(first);
  });

  it('checks again when the body or the id changed after the first call', () => {
    const envelope = envelopeOf(commit('a'));
    decodeEnvelope(envelope);
    envelope.body = encodeCommit(commit('b'));
    expect(strataErrorCode(() => decodeEnvelope(envelope))).toBe('STRATA_BAD_REQUEST');
    envelope.id = commitId(commit('b'));
    expect(decodeEnvelope(envelope)).toEqual(commit('b'));
  });

  it('does not remember a refusal', () => {
    const envelope = { ...envelopeOf(commit('a')), id: commitId(commit('b')) };
    expect(strataErrorCode(() => decodeEnvelope(envelope))).toBe('STRATA_BAD_REQUEST');
    expect(strataErrorCode(() => decodeEnvelope(envelope))).toBe('STRATA_BAD_REQUEST');
  });
});
