import { type Commit, decodeCommit } from './commit.js';
import type { CommitId } from './ids.js';

/** A commit as it travels between nodes: its canonical encoding (verified against `id` on receipt) and small blobs inline. */
export interface Envelope {
  id: CommitId;
  body: string;
  /** Blob hash → base64 bytes, for blobs small enough to ride along; the rest are pulled by hash. */
  blobs?: Record<string, string>;
}

/** What `decodeEnvelope` found for an envelope object, with the body and id it was found from. */
const decoded = new WeakMap<Envelope, { id: string; body: string; commit: Commit }>();

/**
 * The envelope's commit, checked against its id (decodeCommit). The answer is kept for the life of
 * the envelope object, so that the layers a commit from a peer passes through (delivery, then the
 * write path inside its transaction) each check it without each paying for the hash and the
 * parse: a second call on the same object, with the same id and body, returns the same commit.
 * The commit returned is shared and must not be changed.
 */
export function decodeEnvelope(envelope: Envelope): Commit {
  const known = decoded.get(envelope);
  if (known && known.id === envelope.id && known.body === envelope.body) return known.commit;
  const commit = decodeCommit(envelope.body, envelope.id);
  decoded.set(envelope, { id: envelope.id, body: envelope.body, commit });
  return commit;
}
