/**
 * How a page load stays on one release (DESIGN §3): an HTML document served from an unpinned URL
 * (`/apps/A/…`) gets `<base href="/apps/A/@R/">` right after `<head>`. Every relative URL in the
 * page (scripts, styles, images, fetch, dynamic import) then resolves under the pinned prefix, and
 * ES modules resolve their own relative imports against their (pinned) URL. The address bar keeps
 * the unpinned URL, so a reload asks again and gets whatever release is then in effect.
 *
 * A document that already declares a `<base>` is left alone; its author chose the URLs.
 */
const headOpen = /<head(\s[^>]*)?>/i;
/** A `<base>` with an `href` attribute (not `data-href`: the name must stand alone). */
const existingBase = /<base\s(?:[^>]*\s)?href\s*=/i;
/**
 * Text that is not markup: comments, and the content of elements whose text the parser does not
 * read as tags. A `<base href` or `<head>` written there (a commented-out tag, a string in a
 * script) is no element, so the search for them skips it.
 */
const notMarkup =
  /<!--[\s\S]*?(?:-->|$)|<(script|style|textarea|title|template|xmp|noscript)\b[^>]*>[\s\S]*?(?:<\/\1\s*>|$)/gi;

/** `html` with every stretch that is not markup blanked out, same length, so indices still hold. */
function markupOnly(html: string): string {
  return html.replace(notMarkup, (text) => ' '.repeat(text.length));
}

export function pinDocument(html: string, baseHref: string): string {
  const at = pinPosition(html);
  return at === undefined ? html : `${html.slice(0, at)}${baseTag(baseHref)}${html.slice(at)}`;
}

/**
 * Where the `<base>` goes: right after `<head>`, else after the doctype, else at the start;
 * undefined when the document declares its own. Markup is ASCII, so the text may be the bytes
 * read as Latin-1 (any charset that keeps ASCII as ASCII, UTF-8 included), and the index is then
 * a byte offset.
 */
export function pinPosition(html: string): number | undefined {
  const markup = markupOnly(html);
  if (existingBase.test(markup)) return undefined;
  const head = headOpen.exec(markup);
  if (head) return head.index + head[0].length;
  const doctype = /^\s*<!doctype[^>]*>/i.exec(markup);
  return doctype ? doctype[0].length : 0;
}

/**
 * The tag, its href percent-encoded per segment as a URL path needs (a directory named `50%off` is
 * `50%25off`, `a b` is `a%20b`); `@`, `:` and the sub-delimiters stay as they are.
 */
export function baseTag(baseHref: string): string {
  const href = baseHref
    .split('/')
    .map((segment) =>
      encodeURIComponent(segment).replace(/%(40|3A|21|24|26|27|28|29|2A|2B|2C|3B|3D)/gi, (escaped) =>
        decodeURIComponent(escaped),
      ),
    )
    .join('/');
  return `<base href="${escapeAttribute(href)}">`;
}

function escapeAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

export function isHtml(contentType: string | undefined): boolean {
  return /^text\/html\b/i.test(contentType ?? '');
}
