import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { strataErrorCode } from '../../test/support/errors.js';
import { type Commit, commitId, encodeCommit } from '../core/commit.js';
import { sha256 } from '../core/hash.js';
import { formatHlc } from '../core/hlc.js';
import type { BlobId, NodeId } from '../core/ids.js';
import { CommitLog } from './commit-log.js';
import { NodeDatabase } from './database.js';

const nodeA = 'aaaaaaaaaaaaaaaa' as NodeId;
const nodeB = 'bbbbbbbbbbbbbbbb' as NodeId;

function commit(origin: NodeId, seq: number, message = `commit ${seq}`): Commit {
  return {
    origin,
    seq,
    hlc: formatHlc({ wall: 1_000 + seq, counter: 0, node: origin }),
    message,
    ops: [
      {
        kind: 'put',
        bucket: 'b',
        key: `k${seq}`,
        parents: [],
        blob: sha256(`value ${seq}`) as BlobId,
        contentType: 'text/plain',
        size: 7,
        effectiveAt: 1_000 + seq,
      },
    ],
  };
}

let dir: string;
let database: NodeDatabase;
let log: CommitLog;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'strata-log-'));
  database = new NodeDatabase(join(dir, 'strata.db'));
  log = new CommitLog(database.db);
});

afterEach(async () => {
  await database.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('CommitLog', () => {
  it('appends commits in positions and reads them back by id and position', () => {
    const first = log.append(commit(nodeA, 1));
    const second = log.append(commit(nodeA, 2));
    expect(first.id).toBe(commitId(commit(nodeA, 1)));
    expect(second.pos).toBeGreaterThan(first.pos);
    expect(log.get(first.id)).toEqual(first);
    expect(log.at(second.pos)).toEqual(second);
    expect(log.after(0, 10).map((entry) => entry.id)).toEqual([first.id, second.id]);
    expect(log.after(first.pos, 10).map((entry) => entry.id)).toEqual([second.id]);
    expect(log.after(0, 1)).toHaveLength(1);
    expect(log.get('0'.repeat(64))).toBeUndefined();
    expect(log.at(99)).toBeUndefined();
  });

  it('keeps a separate gap-free sequence per origin', () => {
    log.append(commit(nodeA, 1));
    log.append(commit(nodeB, 1));
    log.append(commit(nodeA, 2));
    expect(log.lastSeq(nodeA)).toBe(2);
    expect(log.lastSeq(nodeB)).toBe(1);
    expect(log.lastSeq('cccccccccccccccc' as NodeId)).toBe(0);
  });

  it('rejects a seq gap with STRATA_CONFLICT and writes nothing', () => {
    expect(strataErrorCode(() => log.append(commit(nodeA, 2)))).toBe('STRATA_CONFLICT');
    log.append(commit(nodeA, 1));
    expect(strataErrorCode(() => log.append(commit(nodeA, 3)))).toBe('STRATA_CONFLICT');
    expect(log.after(0, 10)).toHaveLength(1);
    expect(log.lastSeq(nodeA)).toBe(1);
  });

  it('rejects a repeated or older seq', () => {
    log.append(commit(nodeA, 1));
    log.append(commit(nodeA, 2));
    expect(strataErrorCode(() => log.append(commit(nodeA, 2, 'a different commit')))).toBe('STRATA_CONFLICT');
    expect(strataErrorCode(() => log.append(commit(nodeA, 1, 'rewritten history')))).toBe('STRATA_CONFLICT');
    expect(log.after(0, 10)).toHaveLength(2);
  });

  it('detects a row whose body was tampered with when it is read', () => {
    const logged = log.append(commit(nodeA, 1));
    const forged = encodeCommit(commit(nodeA, 1, 'forged'));
    database.db.prepare('UPDATE commits SET body = ? WHERE id = ?').run(forged, logged.id);
    expect(() => log.get(logged.id)).toThrow(/corruption/);
    expect(() => log.at(logged.pos)).toThrow(/corruption/);
    expect(() => log.after(0, 10)).toThrow(/corruption/);
  });

  it('detects a body that still hashes correctly under a rewritten id only if it is not canonical', () => {
    const logged = log.append(commit(nodeA, 1));
    const pretty = JSON.stringify(JSON.parse(encodeCommit(commit(nodeA, 1))), null, 1);
    database.db
      .prepare('UPDATE commits SET body = ?, id = ? WHERE id = ?')
      .run(pretty, sha256(pretty), logged.id);
    expect(() => log.at(logged.pos)).toThrow(/corruption/);
  });

  it('keeps commits across a reopen of the database', async () => {
    const logged = log.append(commit(nodeA, 1));
    await database.close();
    database = new NodeDatabase(join(dir, 'strata.db'));
    log = new CommitLog(database.db);
    expect(log.get(logged.id)).toEqual(logged);
    expect(log.lastSeq(nodeA)).toBe(1);
  });
});
