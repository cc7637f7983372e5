import { createHash } from 'node:crypto';
import type { Db } from '../log/database.js';

/**
 * A digest of the derived state that does not depend on the order in which this node applied
 * commits: versions in version-id order, without node-local positions. Equal digests mean equal
 * versions, parents, retractions and therefore equal winners and conflicts at every read point.
 */
export function computeDigest(db: Db): string {
  const hash = createHash('sha256');
  const rows = db
    .prepare(
      `SELECT version, bucket, key, kind, hlc, effective_at, blob, content_type, size, parents, refs, target
       FROM versions ORDER BY version`,
    )
    .raw()
    .iterate() as Iterable<unknown[]>;
  for (const row of rows) hash.update(`${JSON.stringify(row)}\n`);
  return hash.digest('hex');
}
