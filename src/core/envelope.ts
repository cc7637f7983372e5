import type { CommitId } from './ids.js';

/** A commit as it travels between nodes: its canonical encoding (verified against `id` on receipt) and small blobs inline. */
export interface Envelope {
  id: CommitId;
  body: string;
  /** Blob hash → base64 bytes, for blobs small enough to ride along; the rest are pulled by hash. */
  blobs?: Record<string, string>;
}
