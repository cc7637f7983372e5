/** Branded identifiers (STYLE §9): a plain string cannot be passed where an id is expected. */
export type NodeId = string & { readonly __brand: 'NodeId' };
export type CommitId = string & { readonly __brand: 'CommitId' };
export type BlobId = string & { readonly __brand: 'BlobId' };
export type VersionId = string & { readonly __brand: 'VersionId' };
export type Hlc = string & { readonly __brand: 'Hlc' };

const sha256Hex = /^[0-9a-f]{64}$/;
const versionIdPattern = /^([0-9a-f]{64})\.(0|[1-9][0-9]{0,5})$/;
const nodeIdPattern = /^[0-9a-f]{16}$/;

export function isSha256Hex(value: string): boolean {
  return sha256Hex.test(value);
}

export function isNodeId(value: string): value is NodeId {
  return nodeIdPattern.test(value);
}

/** A version is one op of one commit; its id is `<commit id>.<op index>`. Users treat it as opaque. */
export function versionId(commit: CommitId, opIndex: number): VersionId {
  return `${commit}.${opIndex}` as VersionId;
}

export function isVersionId(value: string): value is VersionId {
  return versionIdPattern.test(value);
}

export function parseVersionId(value: VersionId): { commit: CommitId; opIndex: number } {
  const match = versionIdPattern.exec(value);
  if (!match) throw new Error(`not a version id: ${value}`);
  return { commit: match[1] as CommitId, opIndex: Number(match[2]) };
}
