import { describe, expect, it } from 'vitest';
import { isHtml, pinDocument } from './pin.js';

const base = '/apps/site/@r1/';

describe('pinDocument', () => {
  it('inserts <base> right after <head>', () => {
    expect(pinDocument('<html><head><title>t</title></head></html>', base)).toBe(
      `<html><head><base href="${base}"><title>t</title></head></html>`,
    );
  });

  it('inserts after a <head> with attributes, in any case', () => {
    expect(pinDocument('<HTML><HEAD lang="en"><TITLE>t</TITLE></HEAD>', base)).toBe(
      `<HTML><HEAD lang="en"><base href="${base}"><TITLE>t</TITLE></HEAD>`,
    );
  });

  it('does not mistake <header> for <head>', () => {
    const html = '<!doctype html><body><header>h</header></body>';
    expect(pinDocument(html, base)).toBe(
      `<!doctype html><base href="${base}"><body><header>h</header></body>`,
    );
  });

  it('puts the tag after the doctype when there is no <head>', () => {
    expect(pinDocument('  <!DOCTYPE html>\n<p>hi</p>', base)).toBe(
      `  <!DOCTYPE html><base href="${base}">\n<p>hi</p>`,
    );
  });

  it('puts the tag first in a bare fragment', () => {
    expect(pinDocument('<p>hi</p>', base)).toBe(`<base href="${base}"><p>hi</p>`);
    expect(pinDocument('', base)).toBe(`<base href="${base}">`);
  });

  it('leaves a document with its own <base href> alone', () => {
    const html = '<html><head><BASE HREF="/elsewhere/"></head></html>';
    expect(pinDocument(html, base)).toBe(html);
    const spaced = '<head><base target="_top" href = "/x/"></head>';
    expect(pinDocument(spaced, base)).toBe(spaced);
  });

  it('still pins a document whose <base> only sets a target', () => {
    expect(pinDocument('<head><base target="_blank"></head>', base)).toBe(
      `<head><base href="${base}"><base target="_blank"></head>`,
    );
  });

  it('pins only the first <head>', () => {
    const pinned = pinDocument('<head></head><template><head></head></template>', base);
    expect(pinned.match(/<base /g)).toHaveLength(1);
    expect(pinned.startsWith(`<head><base href="${base}">`)).toBe(true);
  });

  it('pins a document whose only <base href> is in a comment, a script or a template', () => {
    for (const html of [
      '<html><head><!-- <base href="x"> --></head></html>',
      '<html><head><script src="app.js"></script></head><body><script>const t=`<base href="/x/">`;</script></body></html>',
      '<head><style>/* <base href=x> */</style></head>',
      '<head><title>&lt;base href=</title><template><base href="/t/"></template></head>',
      '<head><noscript><base href="/n/"></noscript></head>',
    ]) {
      const pinned = pinDocument(html, base);
      expect(pinned, html).toBe(html.replace(/<head>/, `<head><base href="${base}">`));
    }
  });

  it('finds <head> past a comment or a script that mentions one', () => {
    const html = '<!-- <head> here --><script>"<head>"</script><head><title>t</title></head>';
    expect(pinDocument(html, base)).toBe(
      `<!-- <head> here --><script>"<head>"</script><head><base href="${base}"><title>t</title></head>`,
    );
  });

  it('percent-encodes the href as a URL path, and escapes what is left for the attribute', () => {
    expect(pinDocument('<head></head>', '/apps/a/@r/x"y&z<w/')).toBe(
      '<head><base href="/apps/a/@r/x%22y&amp;z%3Cw/"></head>',
    );
    expect(pinDocument('<head></head>', '/apps/a/@r/50%off/a b/é/')).toBe(
      '<head><base href="/apps/a/@r/50%25off/a%20b/%C3%A9/"></head>',
    );
  });

  it("reads only an href attribute of <base> as the page's own", () => {
    expect(pinDocument('<head><base data-href="x"></head>', '/b/')).toBe(
      '<head><base href="/b/"><base data-href="x"></head>',
    );
    for (const own of ['<base href="x">', '<base target="_top" href=x>', '<BASE\nHREF = "x">'])
      expect(pinDocument(`<head>${own}</head>`, '/b/')).toBe(`<head>${own}</head>`);
  });
});

describe('isHtml', () => {
  it('recognizes text/html with or without parameters, in any case', () => {
    expect(isHtml('text/html')).toBe(true);
    expect(isHtml('text/html; charset=utf-8')).toBe(true);
    expect(isHtml('Text/HTML')).toBe(true);
  });

  it('refuses everything else', () => {
    expect(isHtml(undefined)).toBe(false);
    expect(isHtml('')).toBe(false);
    expect(isHtml('application/xhtml+xml')).toBe(false);
    expect(isHtml('text/htmlx')).toBe(false);
    expect(isHtml('text/plain')).toBe(false);
    expect(isHtml(' text/html')).toBe(false);
  });
});
