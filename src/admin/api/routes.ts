import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { koaBody } from 'koa-body';
import { DatabaseUnavailable } from '../../db/connection-errors.ts';
import { ConflictError, ForbiddenError, InputError, NotFoundError } from '../../errors.ts';
import type { Logger } from '../../http/errors.ts';
import { routeOf } from '../../http/requests.ts';
import { invoke } from './invoke.ts';
import { openApiDocument } from './openapi.ts';
import { OPERATIONS, successStatus, type Services } from './operations.ts';
import { ADMIN_API_PATH, authenticate, Unauthenticated } from './token.ts';

// The admin API over HTTP: JSON in and out, errors as { error, message, fields }.

const jsonBody = koaBody({ json: true, urlencoded: false, multipart: false, text: false, jsonLimit: '64kb', jsonStrict: true });

const isClientError = (err: unknown): err is Error & { status: number } => {
  const status = (err as { status?: unknown }).status;
  return typeof status === 'number' && status >= 400 && status < 500;
};

function answerErrors(logger: Logger) {
  return async (ctx: Context, next: Next) => {
    ctx.set('Cache-Control', 'no-store');
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        ctx.status = 404;
        ctx.body = { error: 'not_found', message: `no operation ${ctx.method} ${ctx.path}; see ${ADMIN_API_PATH}/openapi.json` };
      }
    } catch (err) {
      if (err instanceof Unauthenticated) {
        ctx.status = 401;
        ctx.set('WWW-Authenticate', `Bearer error="${err.code}", error_description="${err.message}"`);
        ctx.body = { error: err.code, message: err.message };
      } else if (err instanceof InputError) {
        const [status, error] =
          err instanceof ForbiddenError ? [403, 'forbidden'] : err instanceof NotFoundError ? [404, 'not_found'] : err instanceof ConflictError ? [409, 'conflict'] : [400, 'invalid_request'];
        ctx.status = status;
        ctx.body = { error, code: err.code, message: err.message, fields: err.issues };
      } else if (isClientError(err)) {
        // The body parser's refusals: malformed JSON, too large.
        ctx.status = err.status;
        ctx.body = { error: 'invalid_request', message: err instanceof SyntaxError ? 'the body is not valid JSON' : err.message };
      } else if (err instanceof DatabaseUnavailable) {
        logger.error(`${ctx.method} ${routeOf(ctx)}: database unavailable`, err);
        ctx.status = 503;
        ctx.body = { error: err.error, message: err.error_description };
      } else {
        logger.error(`${ctx.method} ${routeOf(ctx)} failed`, err);
        ctx.status = 500;
        ctx.body = { error: 'server_error', message: 'something went wrong on our side; it has been logged' };
      }
    }
  };
}

export function adminApiRoutes(services: Services, issuer: string, logger: Logger): Router {
  const router = new Router({ prefix: ADMIN_API_PATH });
  router.use(answerErrors(logger));
  router.get('/openapi.json', (ctx) => {
    ctx.body = openApiDocument(issuer);
  });
  for (const op of OPERATIONS) {
    const path = op.path.replace(/\{(\w+)\}/g, ':$1');
    router[op.method](path, jsonBody, async (ctx) => {
      const who = await authenticate(services.providers.current, services.db, issuer, ctx.get('authorization') || undefined);
      const result = await invoke(services, op, who, { params: ctx.params, query: ctx.query, body: ctx.request.body, ip: ctx.ip });
      ctx.status = successStatus(op);
      if (ctx.status !== 204) ctx.body = result.body;
    });
  }
  router.all('/{*rest}', (ctx) => {
    ctx.status = 404;
    ctx.body = { error: 'not_found', message: `no operation ${ctx.method} ${ctx.path}; see ${ADMIN_API_PATH}/openapi.json` };
  });
  return router;
}
