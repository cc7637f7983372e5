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
const existingBase = /<base\s[^>]*href\s*=/i;
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
  const markup = markupOnly(html);
  if (existingBase.test(markup)) return html;
  const tag = `<base href="${escapeAttribute(baseHref)}">`;
  const head = headOpen.exec(markup);
  if (head) {
    const at = head.index + head[0].length;
    return `${html.slice(0, at)}${tag}${html.slice(at)}`;
  }
  const doctype = /^\s*<!doctype[^>]*>/i.exec(markup);
  if (doctype) return `${doctype[0]}${tag}${html.slice(doctype[0].length)}`;
  return `${tag}${html}`;
}

function escapeAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

export function isHtml(contentType: string | undefined): boolean {
  return /^text\/html\b/i.test(contentType ?? '');
}
