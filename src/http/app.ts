import websocket from '@fastify/websocket';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyServerOptions,
  LogController,
} from 'fastify';
import type { Principal } from '../auth/tokens.js';
import { registerClusterMetrics } from '../cluster/cluster-metrics.js';
import type { ClusterService } from '../cluster/cluster-service.js';
import { linkMessageBytesMax } from '../cluster/peer-link.js';
import { fail, StrataError } from '../core/errors.js';
import { type Context, withContext } from './context.js';
import {
  answerWhatNodeWould,
  clientErrorHandlerCounting,
  errorBody,
  handleError,
  statusOf,
} from './errors.js';
import { isUpgrade } from './params.js';
import { parseJsonBytes } from './raw-body.js';
import { adminRoutes } from './routes/admin.js';
import { appRoutes, serveDefaultApp } from './routes/apps.js';
import { blobRoutes } from './routes/blobs.js';
import { changeRoutes } from './routes/changes.js';
import { clientScriptRoutes } from './routes/client-script.js';
import { clusterRoutes } from './routes/cluster.js';
import { commitRoutes } from './routes/commits.js';
import { keyRoutes } from './routes/keys.js';
import { releaseRoutes } from './routes/releases.js';
import { searchRoutes } from './routes/search.js';
import { systemRoutes } from './routes/system.js';
import { tokenRoutes } from './routes/tokens.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined;
  }
}

export interface AppOptions extends Context {
  /** Peer links, cluster status and events; without it the node has no /v1/cluster routes. */
  cluster?: ClusterService;
  /** Called after `POST /v1/cluster/leave` was answered: the node should stop. */
  onLeave?: () => void;
  logger?: FastifyServerOptions['logger'];
  /** Serve this app at `/` (pinned URLs at `/@<release>/…`). */
  defaultApp?: string;
}

/** Builds the HTTP API of one node. Only the CLI calls `listen` (STYLE §11). */
export function buildApp(options: AppOptions): FastifyInstance {
  const app = Fastify({
    logger: options.logger ?? false,
    // Per-request lines would drown the log at thousands of writes per second; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.limits.jsonBodyBytesMax,
    clientErrorHandler: clientErrorHandlerCounting((status) =>
      options.metrics.requests.inc({ method: '(unparsed)', route: '(unparsed)', status: String(status) }),
    ),
    // Node would answer a missing Host with a bare 400; the onRequest hook refuses it in Strata's form.
    http: { requireHostHeader: false },
    // Keys may be long and contain encoded characters; find-my-way's default of 100 is too short.
    routerOptions: { maxParamLength: 4096 },
    // URLs the router cannot even parse (bad percent-encoding, over-long segments) still get a
    // Strata error body, not Fastify's.
    frameworkErrors: (error, _request, reply) => {
      const strataError =
        error.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? new StrataError('STRATA_INVALID_NAME', 'a path segment is longer than 4096 characters')
          : error.code === 'FST_ERR_BAD_URL'
            ? new StrataError('STRATA_BAD_REQUEST', 'the URL path has a malformed percent-encoding')
            : new StrataError('STRATA_BAD_REQUEST', `the request cannot be parsed: ${error.message}`);
      void (reply as FastifyReply).status(statusOf[strataError.code]).send(errorBody(strataError));
    },
    return503OnClosing: true,
  });
  const context: Context = {
    store: options.store,
    tokens: options.tokens,
    settings: options.settings,
    limits: options.limits,
    metrics: options.metrics,
    releases: options.releases,
  };

  // JSON bodies are checked for UTF-8 before parsing (raw-body.ts); scopes inherit this parser.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => {
    try {
      done(null, parseJsonBytes(body as Buffer));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
  answerWhatNodeWould(
    app.server,
    Math.max(options.limits.objectBytesMax, options.limits.jsonBodyBytesMax),
    (method, status) => options.metrics.requests.inc({ method, route: '(unparsed)', status: String(status) }),
  );
  app.decorateRequest('principal', undefined);
  app.setErrorHandler(handleError);
  app.setNotFoundHandler((request, reply) => {
    const isRead = request.method === 'GET' || request.method === 'HEAD';
    if (options.defaultApp !== undefined && isRead && !request.url.startsWith('/v1/')) {
      return serveDefaultApp(request, reply, context, context.releases, options.defaultApp);
    }
    fail('STRATA_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`);
  });
  // Callback-style hooks: they run on every request, and skip a promise per hook.
  app.addHook('onRequest', (request, _reply, done) => {
    try {
      if (request.headers.host === undefined && request.raw.httpVersion === '1.1') {
        fail('STRATA_BAD_REQUEST', 'an HTTP/1.1 request needs a Host header (RFC 9112 §3.2)');
      }
      checkQueryEncoding(request.url);
      // With a cluster, the WebSocket plugin takes every Upgrade; only the peer link is one. Any
      // other is refused here, in Strata's form, before the plugin could switch protocols.
      if (options.cluster && isUpgrade(request) && request.url.split('?')[0] !== '/v1/cluster/link')
        fail('STRATA_BAD_REQUEST', 'only /v1/cluster/link takes an Upgrade (the WebSocket between peers)');
      // Node keeps the first of two Authorization headers and drops the other: which token was
      // meant is unknowable, so neither is used.
      if (headerCount(request.raw.rawHeaders, 'authorization') > 1)
        fail('STRATA_BAD_REQUEST', 'the request gives Authorization twice: send one "Bearer <token>"');
      request.principal = context.tokens.authenticate(request.headers.authorization);
      done();
    } catch (error) {
      done(error as Error);
    }
  });
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    context.metrics.requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    context.metrics.requestSeconds.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    context.metrics.onResponse(reply.elapsedTime, reply.statusCode);
    done();
  });

  void app.register(withContext(systemRoutes), context);
  if (options.cluster) {
    const cluster = options.cluster;
    registerClusterMetrics(context.metrics.registry, cluster);
    void app.register(websocket, {
      options: { maxPayload: linkMessageBytesMax },
      // The link (peer-link.ts) counts and logs a socket's errors; the plugin's own handler would
      // log each as an internal error, stack and all.
      errorHandler: (_error, socket) => socket.terminate(),
    });
    void app.register(async (scope) => {
      await clusterRoutes(cluster, options.onLeave ?? (() => {}))(scope, context);
    });
  }
  void app.register(clientScriptRoutes);
  void app.register(withContext(keyRoutes), context);
  void app.register(withContext(commitRoutes), context);
  void app.register(withContext(changeRoutes), context);
  void app.register(withContext(blobRoutes), context);
  void app.register(withContext(tokenRoutes), context);
  void app.register(withContext(adminRoutes), context);
  void app.register(withContext(searchRoutes), context);
  void app.register(withContext(releaseRoutes(context.releases)), context);
  void app.register(
    withContext(
      appRoutes({
        releases: context.releases,
        ...(options.defaultApp ? { defaultApp: options.defaultApp } : {}),
      }),
    ),
    context,
  );
  return app;
}

/**
 * The query parser keeps a malformed escape (`%FF`, `%zz`) as literal text, so `q=%FF` would
 * search for "%FF": refuse it as the path's escapes are refused. Only on the API: an app page
 * ignores its query string, and a stray link to it should still load.
 */
function checkQueryEncoding(url: string): void {
  if (!url.startsWith('/v1/')) return;
  const start = url.indexOf('?');
  if (start < 0 || !url.includes('%', start)) return;
  try {
    decodeURIComponent(url.slice(start + 1));
  } catch {
    fail(
      'STRATA_BAD_REQUEST',
      'the query string has a malformed percent-encoding (each % must start an escape of UTF-8, such as %C3%A9)',
    );
  }
}

/** How many times a header is given, from Node's raw list (name, value, name, value, …). */
function headerCount(rawHeaders: string[], lowerName: string): number {
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) count += 1;
  }
  return count;
}
