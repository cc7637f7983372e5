/** JSON as text: what JSON.parse does not report. */

/**
 * The first member name that an object of `text` (valid JSON) gives twice, if any. One pass:
 * strings are skipped with indexOf, so a large value costs little more than finding its end.
 */
export function repeatedMember(text: string): string | undefined {
  /** Per open object its names so far; undefined for an open array. */
  const open: Array<Set<string> | undefined> = [];
  let expectName = false;
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (code === 0x22) {
      let end = index;
      for (;;) {
        end = text.indexOf('"', end + 1);
        if (end < 0) return undefined; // not valid JSON: JSON.parse has said so already
        let backslashes = 0;
        while (text.charCodeAt(end - 1 - backslashes) === 0x5c) backslashes += 1;
        if (backslashes % 2 === 0) break;
      }
      if (expectName) {
        const raw = text.slice(index + 1, end);
        const name = raw.includes('\\') ? (JSON.parse(text.slice(index, end + 1)) as string) : raw;
        const names = open.at(-1) as Set<string>;
        if (names.has(name)) return name;
        names.add(name);
        expectName = false;
      }
      index = end;
    } else if (code === 0x7b) {
      open.push(new Set());
      expectName = true;
    } else if (code === 0x5b) {
      open.push(undefined);
    } else if (code === 0x7d || code === 0x5d) {
      open.pop();
      expectName = false;
    } else if (code === 0x2c) {
      expectName = open.at(-1) !== undefined;
    }
  }
  return undefined;
}
