import type { FastifyInstance, FastifyRequest } from 'fastify';
import { fail } from '../../core/errors.js';
import { checkBucketFilter } from '../../core/names.js';
import { eventsBucket } from '../../release/activation.js';
import type { ChangeRow } from '../../store/snapshot.js';
import { type Context, requireRead, requireRole } from '../context.js';
import { openEventStream, stillAllowed } from '../event-stream.js';
import { header, intParam, onlyParams, single } from '../params.js';

/** Page size of the feed, and of each catch-up step of a live stream. */
const changesLimitMax = 1000;

export async function changeRoutes(app: FastifyInstance, context: Context): Promise<void> {
  // Live streams never end on their own; close them so that shutting the server down does not wait forever.
  const streams = new Set<{ end(): void }>();
  app.addHook('preClose', async () => {
    for (const stream of streams) stream.end();
  });

  app.get('/v1/changes', async (request, reply) => {
    onlyParams(request, ['since', 'bucket', 'limit']);
    const bucketParam = single(request, 'bucket');
    const bucket = bucketParam === undefined ? undefined : checkBucketFilter(bucketParam);
    const authorize = () => {
      // Events are every reader's (as in the unfiltered feed); other system buckets, admins'.
      if (bucket === eventsBucket) requireRole(request, 'read');
      else if (bucket !== undefined) requireRead(request, context, bucket);
      else if (!request.principal)
        fail('STRATA_UNAUTHORIZED', 'the change feed of all buckets needs a token');
    };
    authorize();
    const limit = intParam(request, 'limit', 100, changesLimitMax);
    const since = cursorOf(request);
    const visible = visibility(request);
    const end = context.store.snapshot().lastCursor();
    if (since > end) {
      // Answering "nothing yet, last = since" would make a reader skip the changes up to since.
      fail(
        'STRATA_BAD_REQUEST',
        `cursor ${since} is past the end of this node's feed (${end}); cursors count per node, so start again from 0 or a cursor this node gave`,
      );
    }

    if (!(header(request, 'accept') ?? '').includes('text/event-stream')) {
      const rows = context.store.snapshot().changes(since, limit, bucket);
      // `last` moves past rows this reader may not see, or a run of them would stall the reader.
      const last = rows.length > 0 ? (rows[rows.length - 1] as ChangeRow).cursor : since;
      return { changes: rows.filter(visible).map(changeView), last };
    }
    if (single(request, 'limit') !== undefined) {
      fail('STRATA_BAD_REQUEST', 'limit pages the JSON feed; a live stream sends every change');
    }

    const raw = openEventStream(reply, context.metrics);
    let cursor = since;
    // Flow control: a page is written only when the previous one has drained, so a reader far
    // behind catches up at the pace it reads, and the node holds at most a page for it.
    let draining = false;
    // Checked again before each page: a revoked token or a bucket made private ends the stream.
    const recheck = () => {
      request.principal = context.tokens.authenticate(request.headers.authorization);
      authorize();
    };
    const pump = () => {
      if (draining) return;
      for (;;) {
        const rows = context.store.snapshot().changes(cursor, changesLimitMax, bucket);
        // One write per page: a batch of commits is one chunk on the wire, not one per change.
        if (rows.length > 0 && !stillAllowed(raw, recheck)) return;
        let events = '';
        for (const row of rows) {
          cursor = row.cursor;
          if (visible(row))
            events += `id: ${row.cursor}\nevent: change\ndata: ${JSON.stringify(changeView(row))}\n\n`;
        }
        if (events !== '' && !raw.write(events)) {
          draining = true;
          raw.once('drain', () => {
            draining = false;
            pump();
          });
          return;
        }
        if (rows.length < changesLimitMax) return;
      }
    };
    const close = () => {
      context.store.off('durable', pump);
      streams.delete(raw);
    };
    streams.add(raw);
    raw.on('close', close);
    context.store.on('durable', pump);
    pump();
  });
}

/**
 * Where the reader resumes. `Last-Event-ID` wins over `since`: an EventSource reconnects with its
 * first URL (`?since=0`) and the id of the last event it saw, which is where it got to.
 */
function cursorOf(request: FastifyRequest): number {
  const lastEventId = header(request, 'last-event-id');
  const since = single(request, 'since');
  const [what, value] =
    lastEventId !== undefined && lastEventId !== '' ? ['Last-Event-ID', lastEventId] : ['since', since];
  if (value === undefined || value === '') return 0;
  if (!/^\d{1,15}$/.test(value)) {
    fail('STRATA_BAD_REQUEST', `${what} must be a cursor returned by the feed (a non-negative integer)`);
  }
  return Number(value);
}

/** System buckets appear only to admins, except events, which every reader may follow. */
function visibility(request: FastifyRequest): (row: ChangeRow) => boolean {
  const admin = request.principal?.role === 'admin';
  return (row) => admin || !row.bucket.startsWith('_') || row.bucket === eventsBucket;
}

function changeView(row: ChangeRow) {
  const view: Record<string, unknown> = {
    cursor: row.cursor,
    commit: row.commit_id,
    bucket: row.bucket,
    key: row.key,
    version: row.version,
    kind: row.kind,
  };
  // Event keys are `<event>/<app>/<release>`: spell them out so clients need not parse keys.
  if (row.bucket === eventsBucket) {
    const [event, app, release] = row.key.split('/');
    Object.assign(view, { event, app, release });
  }
  return view;
}
