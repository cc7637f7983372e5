import { Client } from 'undici';

/** Page size of the plain (non-streaming) change feed: the server's maximum. */
const pageLimit = 1000;

/** The node's last change-feed cursor: pages through the feed from the start. */
export async function lastCursor(node) {
  let since = 0;
  for (;;) {
    const page = await node.json(`/v1/changes?since=${since}&limit=${pageLimit}`);
    if (page.last === since) return since;
    since = page.last;
  }
}

/**
 * Follows a node's live change feed (`GET /v1/changes` as server-sent events) from `since`, on a
 * connection of its own. `onChange(change, atMs)` is called for each item with the
 * `performance.now()` at which the chunk holding it arrived; the stream is parsed per chunk, so
 * the time is that of arrival, not of parsing.
 */
export async function followChanges(node, since, onChange) {
  const client = new Client(node.url, { bodyTimeout: 0 });
  const response = await client.request({
    path: `/v1/changes?since=${since}`,
    method: 'GET',
    headers: { authorization: `Bearer ${node.token}`, accept: 'text/event-stream' },
  });
  if (response.statusCode !== 200) {
    const text = await response.body.text();
    await client.close();
    throw new Error(`GET /v1/changes on ${node.name} answered ${response.statusCode}: ${text}`);
  }
  response.body.setEncoding('utf8');
  let closing = false;
  let failure;
  const done = (async () => {
    let buffer = '';
    try {
      for await (const chunk of response.body) {
        const atMs = performance.now();
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          for (const line of event.split('\n')) {
            if (line.startsWith('data: ')) onChange(JSON.parse(line.slice(6)), atMs);
          }
        }
      }
      if (!closing) failure = new Error(`the change feed of ${node.name} ended`);
    } catch (error) {
      if (!closing) failure = error;
    }
  })();
  return {
    /** Set when the stream broke before `close`: the figures of that node are then incomplete. */
    failure: () => failure,
    async close() {
      closing = true;
      response.body.destroy();
      await done;
      await client.destroy();
    },
  };
}
