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

export function pinDocument(html: string, baseHref: string): string {
  if (existingBase.test(html)) return html;
  const tag = `<base href="${escapeAttribute(baseHref)}">`;
  const head = headOpen.exec(html);
  if (head) {
    const at = head.index + head[0].length;
    return `${html.slice(0, at)}${tag}${html.slice(at)}`;
  }
  const doctype = /^\s*<!doctype[^>]*>/i.exec(html);
  if (doctype) return `${doctype[0]}${tag}${html.slice(doctype[0].length)}`;
  return `${tag}${html}`;
}

function escapeAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

export function isHtml(contentType: string | undefined): boolean {
  return /^text\/html\b/i.test(contentType ?? '');
}
