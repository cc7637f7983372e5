/**
 * Canonical encoding: JSON with object keys sorted by code unit, no insignificant white space,
 * `undefined` members dropped, and only safe integers as numbers. Two structurally equal values
 * always encode to the same bytes, which is what content addressing needs (DESIGN §1.2).
 */
export type Canonical =
  | null
  | boolean
  | number
  | string
  | Canonical[]
  | { [key: string]: Canonical | undefined };

export function canonicalEncode(value: Canonical): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isSafeInteger(value))
        throw new TypeError(`canonical encoding takes safe integers only, got ${value}`);
      return String(value);
    case 'string':
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map(canonicalEncode).join(',')}]`;
      const members: string[] = [];
      for (const key of Object.keys(value).sort()) {
        const member = value[key];
        if (member === undefined) continue;
        members.push(`${JSON.stringify(key)}:${canonicalEncode(member)}`);
      }
      return `{${members.join(',')}}`;
    }
    default:
      throw new TypeError(`cannot encode ${typeof value} canonically`);
  }
}
