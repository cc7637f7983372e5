import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { fail } from '../core/errors.js';
import type { VersionId } from '../core/ids.js';
import { formatTime } from '../core/time.js';
import type { Store } from '../store/store.js';

export type Role = 'admin' | 'write' | 'read';
export const roles: readonly Role[] = ['admin', 'write', 'read'];

export interface Principal {
  role: Role;
  /** `admin` for the node's admin token, otherwise the token id. */
  tokenId: string;
  name: string;
}

export interface TokenInfo {
  id: string;
  name: string;
  role: Role;
  createdAt: string;
}

interface StoredToken {
  name: string;
  role: Role;
  /** sha256 of the whole token: tokens carry 256 random bits, so a slow hash adds nothing. */
  hash: string;
  createdAt: string;
}

/** Tokens live in the log (bucket `_auth`, key = token id) so that every node of a cluster knows them. */
export const authBucket = '_auth';
const tokenPattern = /^strata_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$/;
/** Presented tokens longer than this are refused before hashing. */
const tokenBytesMax = 256;

/**
 * What is wrong with an admin token given by STRATA_ADMIN_TOKEN or `<data>/admin-token`, if
 * anything: it must be presentable as `Bearer <token>` and long enough not to be guessed.
 */
export function adminTokenProblem(token: string): string | undefined {
  if (token.length < 16) return 'must be at least 16 characters';
  if (token.length > tokenBytesMax) return `must be at most ${tokenBytesMax} characters`;
  if (!/^[\x21-\x7e]+$/.test(token))
    return 'must be printable ASCII without spaces (it is sent as "Authorization: Bearer <token>")';
  return undefined;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function generateToken(): { id: string; token: string } {
  const id = randomBytes(8).toString('hex');
  return { id, token: `strata_${id}_${randomBytes(32).toString('base64url')}` };
}

function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && timingSafeEqual(left, right);
}

/** Bearer-token authentication and token management (roles: admin > write > read). */
export class Tokens {
  constructor(
    private readonly store: Store,
    private readonly adminTokenHash: string,
  ) {}

  /** The principal behind an Authorization header; undefined when there is none. */
  authenticate(header: string | undefined): Principal | undefined {
    if (header === undefined) return undefined;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    // An empty header is malformed too: most often a token variable that was not set.
    if (!match) fail('STRATA_UNAUTHORIZED', 'Authorization must be "Bearer <token>"');
    const token = match[1] as string;
    if (token.length > tokenBytesMax) fail('STRATA_UNAUTHORIZED', 'token is not valid');
    const hash = hashToken(token);
    if (sameHash(hash, this.adminTokenHash)) return { role: 'admin', tokenId: 'admin', name: 'admin' };
    const id = tokenPattern.exec(token)?.[1];
    const stored = id ? this.lookup(id) : undefined;
    if (!id || !stored || !sameHash(hash, stored.hash))
      fail('STRATA_UNAUTHORIZED', 'token is not valid or was revoked');
    return { role: stored.role, tokenId: id, name: stored.name };
  }

  async create(role: Role, name: string): Promise<TokenInfo & { token: string }> {
    if (!roles.includes(role)) fail('STRATA_BAD_REQUEST', `role must be one of ${roles.join(', ')}`);
    // Characters are code points: an emoji is one, not the two UTF-16 units it takes.
    const characters = [...name].length;
    if (characters === 0 || characters > 128)
      fail('STRATA_BAD_REQUEST', `token name must be 1–128 characters, got ${characters}`);
    // The name becomes the author of the token's commits, printed by the CLI and written to logs.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point.
    if (/[\u0000-\u001f\u007f-\u009f]/.test(name) || !name.isWellFormed()) {
      fail('STRATA_BAD_REQUEST', 'token name must not contain control characters or lone surrogates');
    }
    const { id, token } = generateToken();
    const createdAt = formatTime(this.store.clock.now());
    const stored: StoredToken = { name, role, hash: hashToken(token), createdAt };
    const blob = await this.store.blobs.fromBuffer(Buffer.from(JSON.stringify(stored)));
    await this.store.write({
      ops: [
        {
          kind: 'put',
          bucket: authBucket,
          key: id,
          blob,
          contentType: 'application/json',
          ifNoneMatch: true,
        },
      ],
      message: `create token ${id}`,
    });
    return { id, name, role, createdAt, token };
  }

  list(): TokenInfo[] {
    const snapshot = this.store.snapshot();
    return snapshot
      .listKeys(authBucket, { limit: 100_000 })
      .keys.map(({ key }) => {
        const stored = this.lookup(key);
        return stored
          ? { id: key, name: stored.name, role: stored.role, createdAt: stored.createdAt }
          : undefined;
      })
      .filter((info): info is TokenInfo => info !== undefined);
  }

  async revoke(id: string): Promise<VersionId> {
    if (id === 'admin') {
      fail(
        'STRATA_CONFLICT',
        'the admin token is not stored as a token: change it with STRATA_ADMIN_TOKEN (or <data>/admin-token) and restart',
      );
    }
    if (!/^[0-9a-f]{16}$/.test(id)) fail('STRATA_NOT_FOUND', `no token ${id.slice(0, 80)}`);
    if (!this.lookup(id)) fail('STRATA_NOT_FOUND', `no token ${id}`);
    const result = await this.store.write({
      ops: [{ kind: 'delete', bucket: authBucket, key: id }],
      message: `revoke token ${id}`,
    });
    return result.versions[0] as VersionId;
  }

  private lookup(id: string): StoredToken | undefined {
    const snapshot = this.store.snapshot();
    const winner = snapshot.live(authBucket, id);
    if (!winner?.blob) return undefined;
    const blob = this.store.blobs.get(winner.blob);
    if (!blob?.data) return undefined;
    return JSON.parse(blob.data.toString('utf8')) as StoredToken;
  }
}
