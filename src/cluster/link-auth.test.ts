import { describe, expect, it } from 'vitest';
import { strataErrorCode } from '../../test/support/errors.js';
import { ManualClock } from '../core/clock.js';
import type { NodeId } from '../core/ids.js';
import { clusterKeyLengthMin, type DialProof, LinkAuth } from './link-auth.js';

const key = 'correct horse battery staple';
const dialerId = '0123456789abcdef' as NodeId;
const acceptorId = 'fedcba9876543210' as NodeId;
const start = 1_700_000_000_000;
const tenMinutesMs = 10 * 60 * 1000;

function pair(): { clock: ManualClock; dialer: LinkAuth; acceptor: LinkAuth } {
  const clock = new ManualClock(start);
  return {
    clock,
    dialer: new LinkAuth(key, () => clock.now()),
    acceptor: new LinkAuth(key, () => clock.now()),
  };
}

const headers = (proof: DialProof): Record<string, string | string[] | undefined> => ({ ...proof });

describe('LinkAuth', () => {
  it(`refuses a cluster key shorter than ${clusterKeyLengthMin} characters`, () => {
    expect(strataErrorCode(() => new LinkAuth('x'.repeat(clusterKeyLengthMin - 1), Date.now))).toBe(
      'STRATA_BAD_REQUEST',
    );
    expect(strataErrorCode(() => new LinkAuth('', Date.now))).toBe('STRATA_BAD_REQUEST');
    expect(() => new LinkAuth('x'.repeat(clusterKeyLengthMin), Date.now)).not.toThrow();
  });

  describe('dial and verifyDial', () => {
    it('dial headers carry the id, the clock, a fresh nonce and a proof', () => {
      const { dialer } = pair();
      const first = dialer.dial(dialerId, 'strata-a');
      const second = dialer.dial(dialerId, 'strata-a');
      expect(first).toMatchObject({
        'strata-peer-id': dialerId,
        'strata-peer-name': 'strata-a',
        'strata-cluster-time': String(start),
      });
      expect(first['strata-cluster-nonce']).toMatch(/^[0-9a-f]{32}$/);
      expect(first['strata-cluster-proof']).toMatch(/^[0-9a-f]{64}$/);
      expect(second['strata-cluster-nonce']).not.toBe(first['strata-cluster-nonce']);
      expect(second['strata-cluster-proof']).not.toBe(first['strata-cluster-proof']);
    });

    it('a node holding the same key accepts the headers and learns who dialed', () => {
      const { dialer, acceptor } = pair();
      const proof = dialer.dial(dialerId, 'strata-a');
      expect(acceptor.verifyDial(headers(proof))).toEqual({
        peer: dialerId,
        nonce: proof['strata-cluster-nonce'],
      });
    });

    it('refuses headers made with another key', () => {
      const { clock, acceptor } = pair();
      const stranger = new LinkAuth('another key of enough length', () => clock.now());
      expect(strataErrorCode(() => acceptor.verifyDial(headers(stranger.dial(dialerId, 'x'))))).toBe(
        'STRATA_UNAUTHORIZED',
      );
    });

    it.each([
      ['the peer id', 'strata-peer-id', acceptorId],
      ['the time', 'strata-cluster-time', String(start + 1)],
      ['the nonce', 'strata-cluster-nonce', 'f'.repeat(32)],
      ['the proof', 'strata-cluster-proof', 'f'.repeat(64)],
    ] as const)('refuses headers whose %s was changed', (_, name, value) => {
      const { dialer, acceptor } = pair();
      const proof = dialer.dial(dialerId, 'strata-a');
      expect(strataErrorCode(() => acceptor.verifyDial({ ...proof, [name]: value }))).toBe(
        'STRATA_UNAUTHORIZED',
      );
    });

    it('does not authenticate the name header, which the protocol does not use', () => {
      const { dialer, acceptor } = pair();
      const proof = dialer.dial(dialerId, 'strata-a');
      expect(acceptor.verifyDial({ ...proof, 'strata-peer-name': 'other' }).peer).toBe(dialerId);
    });

    it('accepts a proof up to ten minutes old or ahead, and refuses it beyond', () => {
      const { clock, dialer, acceptor } = pair();
      const old = dialer.dial(dialerId, 'a');
      const stale = dialer.dial(dialerId, 'a');
      clock.advance(tenMinutesMs);
      expect(acceptor.verifyDial(headers(old)).peer).toBe(dialerId);
      clock.advance(1);
      expect(strataErrorCode(() => acceptor.verifyDial(headers(stale)))).toBe('STRATA_UNAUTHORIZED');

      // A dialer whose clock runs ahead of the acceptor's.
      const ahead = new ManualClock(start + 2 * tenMinutesMs + 2);
      const fast = new LinkAuth(key, () => ahead.now());
      expect(strataErrorCode(() => acceptor.verifyDial(headers(fast.dial(dialerId, 'a'))))).toBe(
        'STRATA_UNAUTHORIZED',
      );
      ahead.set(clock.now() + tenMinutesMs);
      expect(acceptor.verifyDial(headers(fast.dial(dialerId, 'a'))).peer).toBe(dialerId);
    });

    it('accepts a nonce once: a captured handshake cannot be replayed', () => {
      const { clock, dialer, acceptor } = pair();
      const proof = dialer.dial(dialerId, 'strata-a');
      acceptor.verifyDial(headers(proof));
      expect(strataErrorCode(() => acceptor.verifyDial(headers(proof)))).toBe('STRATA_UNAUTHORIZED');
      clock.advance(1000);
      expect(strataErrorCode(() => acceptor.verifyDial(headers(proof)))).toBe('STRATA_UNAUTHORIZED');
    });

    it('does not spend a nonce on a refused attempt', () => {
      const { dialer, acceptor } = pair();
      const proof = dialer.dial(dialerId, 'strata-a');
      expect(
        strataErrorCode(() => acceptor.verifyDial({ ...proof, 'strata-cluster-proof': '0'.repeat(64) })),
      ).toBe('STRATA_UNAUTHORIZED');
      expect(acceptor.verifyDial(headers(proof)).peer).toBe(dialerId);
    });

    const malformed: Array<[string, (proof: DialProof) => Record<string, string | string[] | undefined>]> = [
      ['no headers at all', () => ({})],
      ['no peer id', (proof) => ({ ...proof, 'strata-peer-id': undefined })],
      ['no time', (proof) => ({ ...proof, 'strata-cluster-time': undefined })],
      ['no nonce', (proof) => ({ ...proof, 'strata-cluster-nonce': undefined })],
      ['no proof', (proof) => ({ ...proof, 'strata-cluster-proof': undefined })],
      ['an empty proof', (proof) => ({ ...proof, 'strata-cluster-proof': '' })],
      [
        'a repeated header',
        (proof) => ({ ...proof, 'strata-cluster-proof': [proof['strata-cluster-proof']] }),
      ],
      ['a peer id that is not a node id', (proof) => ({ ...proof, 'strata-peer-id': 'node-a' })],
      ['a time that is not digits', (proof) => ({ ...proof, 'strata-cluster-time': '1e12' })],
      ['a negative time', (proof) => ({ ...proof, 'strata-cluster-time': `-${start}` })],
      ['a time of 16 digits', (proof) => ({ ...proof, 'strata-cluster-time': '1'.repeat(16) })],
      ['a short nonce', (proof) => ({ ...proof, 'strata-cluster-nonce': 'a'.repeat(31) })],
      ['a nonce in capitals', (proof) => ({ ...proof, 'strata-cluster-nonce': 'A'.repeat(32) })],
      ['a proof that is not hex', (proof) => ({ ...proof, 'strata-cluster-proof': 'z'.repeat(64) })],
    ];

    it.each(malformed)('refuses %s with STRATA_UNAUTHORIZED', (_, make) => {
      const { dialer, acceptor } = pair();
      expect(strataErrorCode(() => acceptor.verifyDial(make(dialer.dial(dialerId, 'strata-a'))))).toBe(
        'STRATA_UNAUTHORIZED',
      );
    });

    // Regression: a valid MAC with trailing junk or in capitals is still a malformed header.
    it.each([
      ['with text appended', (proof: string) => `${proof}zz`],
      ['with one hex digit appended', (proof: string) => `${proof}0`],
      ['in capitals', (proof: string) => proof.toUpperCase()],
    ])('refuses a valid proof %s as malformed', (_, change) => {
      const { dialer, acceptor } = pair();
      const proof = dialer.dial(dialerId, 'strata-a');
      expect(
        strataErrorCode(() =>
          acceptor.verifyDial({ ...proof, 'strata-cluster-proof': change(proof['strata-cluster-proof']) }),
        ),
      ).toBe('STRATA_UNAUTHORIZED');
    });
  });

  describe('accept and verifyAccept', () => {
    it('the dialer checks that the acceptor answered its nonce with the same key', () => {
      const { dialer, acceptor } = pair();
      const proof = dialer.dial(dialerId, 'strata-a');
      const { nonce } = acceptor.verifyDial(headers(proof));
      const answer = acceptor.accept(acceptorId, nonce);
      expect(answer).toMatch(/^[0-9a-f]{64}$/);
      expect(dialer.verifyAccept(acceptorId, proof['strata-cluster-nonce'], answer)).toBe(true);
    });

    it('refuses an answer for another nonce, from another node, or made with another key', () => {
      const { dialer, acceptor } = pair();
      const nonce = 'a'.repeat(32);
      const answer = acceptor.accept(acceptorId, nonce);
      expect(dialer.verifyAccept(acceptorId, 'b'.repeat(32), answer)).toBe(false);
      expect(dialer.verifyAccept(dialerId, nonce, answer)).toBe(false);
      const stranger = new LinkAuth('another key of enough length', Date.now);
      expect(dialer.verifyAccept(acceptorId, nonce, stranger.accept(acceptorId, nonce))).toBe(false);
    });

    it('does not take a dial proof for an answer (the two are told apart)', () => {
      const { dialer } = pair();
      const proof = dialer.dial(acceptorId, 'b');
      expect(
        dialer.verifyAccept(acceptorId, proof['strata-cluster-nonce'], proof['strata-cluster-proof']),
      ).toBe(false);
    });

    it('answers false, without throwing, to a proof of the wrong length or not hex', () => {
      const { dialer } = pair();
      for (const proof of ['', 'ab', 'z'.repeat(64), 'a'.repeat(128)])
        expect(dialer.verifyAccept(acceptorId, 'a'.repeat(32), proof)).toBe(false);
    });
  });
});
