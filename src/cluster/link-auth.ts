import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { fail } from '../core/errors.js';
import { isNodeId, type NodeId } from '../core/ids.js';
import { Lru } from '../core/lru.js';

/**
 * Peer authentication with the cluster key (a shared secret, never sent). The dialer proves it
 * holds the key with an HMAC over its id, the time and a fresh nonce, in the headers of the
 * WebSocket upgrade (or of an HTTP pull); the acceptor answers in its hello with an HMAC over the
 * dialer's nonce, so each side knows the other holds the key. A nonce is accepted once, and only
 * within `proofAgeMsMax` of the acceptor's clock, so a captured handshake cannot be replayed.
 */
export const clusterKeyLengthMin = 16;
/** Wide, because clocks of peers may be off (that is flagged, not refused). */
const proofAgeMsMax = 10 * 60 * 1000;
/** Nonces remembered for replay detection: far more than handshakes in ten minutes. */
const noncesRemembered = 100_000;

export interface DialProof {
  'strata-peer-id': NodeId;
  'strata-peer-name': string;
  'strata-cluster-time': string;
  'strata-cluster-nonce': string;
  'strata-cluster-proof': string;
}

export class LinkAuth {
  private readonly key: Buffer;
  private readonly nonces = new Lru<string, true>(noncesRemembered);

  constructor(
    clusterKey: string,
    private readonly now: () => number,
  ) {
    if (clusterKey.length < clusterKeyLengthMin)
      fail('STRATA_BAD_REQUEST', `the cluster key must be at least ${clusterKeyLengthMin} characters`);
    this.key = createHash('sha256').update(`strata-cluster-key\n${clusterKey}`).digest();
  }

  /** Headers for a request to a peer: a link upgrade or a pull. */
  dial(self: NodeId, name: string): DialProof {
    const time = String(this.now());
    const nonce = randomBytes(16).toString('hex');
    return {
      'strata-peer-id': self,
      'strata-peer-name': name,
      'strata-cluster-time': time,
      'strata-cluster-nonce': nonce,
      'strata-cluster-proof': this.mac(`dial\n${self}\n${time}\n${nonce}`),
    };
  }

  /** Checks a dialer's headers; returns its id and nonce, or throws STRATA_UNAUTHORIZED with the reason. */
  verifyDial(headers: Record<string, string | string[] | undefined>): { peer: NodeId; nonce: string } {
    const value = (name: string) => {
      const found = headers[name];
      return typeof found === 'string' ? found : undefined;
    };
    const peer = value('strata-peer-id');
    const time = value('strata-cluster-time');
    const nonce = value('strata-cluster-nonce');
    const proof = value('strata-cluster-proof');
    if (!peer || !time || !nonce || !proof)
      fail('STRATA_UNAUTHORIZED', 'peer requests need the strata-cluster-* headers of the cluster key');
    if (
      !isNodeId(peer) ||
      !/^\d{1,15}$/.test(time) ||
      !/^[0-9a-f]{32}$/.test(nonce) ||
      !/^[0-9a-f]{64}$/.test(proof)
    )
      fail('STRATA_UNAUTHORIZED', 'malformed strata-cluster-* headers');
    if (!this.matches(proof, `dial\n${peer}\n${time}\n${nonce}`))
      fail('STRATA_UNAUTHORIZED', 'the cluster key proof does not match: wrong --cluster-key?');
    if (Math.abs(this.now() - Number(time)) > proofAgeMsMax)
      fail('STRATA_UNAUTHORIZED', 'the cluster key proof is too old (or the clocks are ten minutes apart)');
    if (this.nonces.get(nonce)) fail('STRATA_UNAUTHORIZED', 'the cluster key proof was used before');
    this.nonces.set(nonce, true);
    return { peer, nonce };
  }

  /** The acceptor's answer to a dialer's nonce. */
  accept(self: NodeId, dialerNonce: string): string {
    return this.mac(`accept\n${self}\n${dialerNonce}`);
  }

  verifyAccept(peer: NodeId, dialerNonce: string, proof: string): boolean {
    return this.matches(proof, `accept\n${peer}\n${dialerNonce}`);
  }

  private mac(text: string): string {
    return createHmac('sha256', this.key).update(text).digest('hex');
  }

  private matches(proof: string, text: string): boolean {
    const expected = Buffer.from(this.mac(text), 'hex');
    const given = Buffer.from(proof, 'hex');
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}
