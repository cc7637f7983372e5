import { hlcWall } from '../core/hlc.js';
import { formatTime } from '../core/time.js';
import type { VersionRow } from '../store/derived.js';
import type { HistoryEntry } from '../store/snapshot.js';

/** The JSON form of a version, as listed by history and commits. */
export function versionView(row: HistoryEntry | VersionRow) {
  const view: Record<string, unknown> = {
    version: row.version,
    commit: row.commit,
    bucket: row.bucket,
    key: row.key,
    kind: row.kind,
    parents: row.parents,
    origin: row.origin,
    hlc: row.hlc,
    txTime: formatTime(hlcWall(row.hlc)),
    effectiveAt: formatTime(row.effectiveAt),
  };
  if (row.kind === 'put') {
    view.contentType = row.contentType;
    view.size = row.size;
    view.blob = row.blob;
  }
  if (row.refs) view.refs = row.refs;
  if (row.target) view.target = row.target;
  if ('retractedBy' in row && row.retractedBy) {
    view.retracted = true;
    view.retractedBy = row.retractedBy;
  }
  return view;
}

export function etagOf(version: string): string {
  return `"${version}"`;
}
