import type { FastifyInstance, FastifyRequest } from 'fastify';
import { messageBytesMax } from '../../core/commit.js';
import { fail, onlyFields } from '../../core/errors.js';
import { checkBucketName } from '../../core/names.js';
import { formatTime, parseTime } from '../../core/time.js';
import type { ReleaseInfo, Releases, RouteTarget } from '../../release/releases.js';
import { type Context, requireRole } from '../context.js';
import { single, versionParam } from '../params.js';

/** The release API (DESIGN §3): timelines are histories of `_releases/<app>`. */
export function releaseRoutes(releases: Releases) {
  return async (app: FastifyInstance, context: Context): Promise<void> => {
    // JSON only: a text/plain body gets 415 instead of being parsed as a string.
    app.removeContentTypeParser('text/plain');

    app.get('/v1/apps', async (request) => {
      requireRole(request, 'read');
      return { apps: releases.apps(context.store.snapshot()) };
    });

    app.post('/v1/apps/:app/releases', async (request, reply) => {
      requireRole(request, 'write');
      const name = appName(request);
      const body = objectBody(
        request,
        '{"routes": {"/path": "<version>" | {"bucket","key"}}, "entry"?, "spa"?, "message"?, "effectiveAt"?}',
      );
      onlyFields(body, ['routes', 'entry', 'spa', 'message', 'effectiveAt'], 'the release');
      const { routes, entry, spa, message, effectiveAt } = body;
      if (typeof routes !== 'object' || routes === null || Array.isArray(routes)) {
        fail(
          'STRATA_BAD_REQUEST',
          '"routes" must be an object mapping paths to versions or {"bucket","key"}',
        );
      }
      if (entry !== undefined && typeof entry !== 'string')
        fail('STRATA_BAD_REQUEST', '"entry" must be a route path');
      if (spa !== undefined && typeof spa !== 'boolean')
        fail('STRATA_BAD_REQUEST', '"spa" must be true or false');
      const created = await releases.create(name, {
        routes: routes as Record<string, RouteTarget>,
        ...(entry !== undefined ? { entry: entry as string } : {}),
        ...(spa !== undefined ? { spa: spa as boolean } : {}),
        ...(message !== undefined ? { message: messageOf(message) } : {}),
        ...(effectiveAt !== undefined ? { effectiveAt: timeOf(effectiveAt) } : {}),
        ...(request.principal ? { author: request.principal.name } : {}),
      });
      return reply
        .status(201)
        .send({ release: created.release, effectiveAt: formatTime(created.effectiveAt) });
    });

    app.get('/v1/apps/:app/releases', async (request) => {
      requireRole(request, 'read');
      const name = appName(request);
      const timeline = releases.timeline(name, context.store.snapshot());
      if (timeline.length === 0) fail('STRATA_NOT_FOUND', `no app ${name}`);
      return { app: name, releases: timeline.map(infoView) };
    });

    app.get('/v1/apps/:app/releases/:release', async (request) => {
      requireRole(request, 'read');
      const name = appName(request);
      const { release } = request.params as { release: string };
      const { info, table, files } = releases.get(
        name,
        versionParam(release, 'release'),
        context.store.snapshot(),
      );
      // spa is always said, true or false; entry only when the release has one.
      return { ...infoView(info), ...table, spa: table.spa === true, files };
    });

    app.delete('/v1/apps/:app/releases/:release', async (request) => {
      requireRole(request, 'write');
      const name = appName(request);
      const { release } = request.params as { release: string };
      const version = await releases.cancel(name, versionParam(release, 'release'));
      return { release, cancelled: true, version };
    });

    app.post('/v1/apps/:app/rollback', async (request, reply) => {
      requireRole(request, 'write');
      const name = appName(request);
      const body =
        request.body === undefined
          ? {}
          : objectBody(request, '{"to"?: "<release>", "effectiveAt"?: "<time>"}');
      onlyFields(body, ['to', 'effectiveAt'], 'the rollback');
      if (body.to !== undefined && typeof body.to !== 'string')
        fail('STRATA_BAD_REQUEST', '"to" must be a release id (a string, as `strata releases` prints it)');
      const to = body.to === undefined ? undefined : versionParam(body.to as string, 'to');
      const result = await releases.rollback(name, {
        ...(to !== undefined ? { to } : {}),
        ...(body.effectiveAt !== undefined ? { effectiveAt: timeOf(body.effectiveAt) } : {}),
        ...(request.principal ? { author: request.principal.name } : {}),
      });
      // A rollback effective before the active release is history, not served: the state says so.
      const state = releases
        .timeline(name, context.store.snapshot())
        .find((entry) => entry.release === result.release)?.state;
      return reply.status(201).send({ ...result, effectiveAt: formatTime(result.effectiveAt), state });
    });

    app.get('/v1/apps/:app/diff', async (request) => {
      requireRole(request, 'read');
      const name = appName(request);
      const from = single(request, 'from');
      const to = single(request, 'to');
      if (from === undefined || to === undefined)
        fail('STRATA_BAD_REQUEST', 'diff needs from=<release> and to=<release>');
      return releases.diff(
        name,
        versionParam(from, 'from'),
        versionParam(to, 'to'),
        context.store.snapshot(),
      );
    });
  };
}

function appName(request: FastifyRequest): string {
  return checkBucketName((request.params as { app: string }).app, 'app');
}

function objectBody(request: FastifyRequest, shape: string): Record<string, unknown> {
  const body = request.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    fail('STRATA_BAD_REQUEST', `body must be JSON: ${shape}`);
  return body as Record<string, unknown>;
}

function messageOf(value: unknown): string {
  if (typeof value !== 'string' || Buffer.byteLength(value) > messageBytesMax || !value.isWellFormed()) {
    fail(
      'STRATA_BAD_REQUEST',
      `"message" must be a string of at most ${messageBytesMax} bytes of UTF-8 (no lone surrogates)`,
    );
  }
  return value;
}

function timeOf(value: unknown): number {
  if (typeof value !== 'string' && typeof value !== 'number')
    fail('STRATA_INVALID_TIME', '"effectiveAt" must be RFC 3339 or epoch milliseconds');
  return parseTime(String(value), 'effectiveAt');
}

function infoView(info: ReleaseInfo) {
  return { ...info, effectiveAt: formatTime(info.effectiveAt), txTime: formatTime(info.txTime) };
}
