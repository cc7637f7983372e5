import type { VersionId } from '../core/ids.js';
import type { Store } from '../store/store.js';

export interface BucketSettings {
  /** Anyone may read the bucket's keys without a token. */
  publicRead: boolean;
}

/** Bucket settings are versions in the system bucket `_buckets` (key = bucket name), so they replicate. */
const settingsBucket = '_buckets';
const defaults: BucketSettings = { publicRead: false };

export class BucketSettingsStore {
  constructor(private readonly store: Store) {}

  get(bucket: string): BucketSettings {
    const winner = this.store.snapshot().live(settingsBucket, bucket);
    const data = winner?.blob ? this.store.blobs.get(winner.blob)?.data : undefined;
    if (!data) return defaults;
    return { ...defaults, ...(JSON.parse(data.toString('utf8')) as Partial<BucketSettings>) };
  }

  async set(bucket: string, settings: BucketSettings): Promise<VersionId> {
    const blob = await this.store.blobs.fromBuffer(Buffer.from(JSON.stringify(settings)));
    const result = await this.store.write({
      ops: [{ kind: 'put', bucket: settingsBucket, key: bucket, blob, contentType: 'application/json' }],
      message: `settings of bucket ${bucket}`,
    });
    return result.versions[0] as VersionId;
  }
}
