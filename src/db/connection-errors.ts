// Telling "the database is not there" (a restart, a failover, a cut network, a full
// pool) from "this statement failed": the first is an outage the client may retry, the
// second is a bug or bad input. Only the first becomes DatabaseUnavailable.

// SQLSTATE class 08 (connection exception) and these from class 57 (operator
// intervention): the server is shutting down, crashed, or is still starting.
const CONNECTION_SQLSTATES = new Set(['57P01', '57P02', '57P03']);
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
// node-postgres reports a socket that closed under it by message only.
const LOST_MESSAGES = /^(Connection terminated unexpectedly|Connection terminated due to connection timeout|Client has encountered a connection error and is not queryable)$/;

export function isConnectionError(err: unknown, depth = 0): boolean {
  if (!(err instanceof Error) || depth > 2) return false;
  if (err instanceof DatabaseUnavailable) return true;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (CONNECTION_SQLSTATES.has(code) || /^08[0-9A-Z]{3}$/.test(code) || SOCKET_CODES.has(code))) return true;
  // The pool waited for a connection that never came (knex's KnexTimeoutError).
  if (err.name === 'KnexTimeoutError') return true;
  if (LOST_MESSAGES.test(err.message)) return true;
  // Connecting to a name with several addresses fails with one error per address.
  if (err instanceof AggregateError && err.errors.length > 0 && err.errors.every((inner) => isConnectionError(inner, depth + 1))) return true;
  return isConnectionError(err.cause, depth + 1);
}

// Shaped as the provider's own OAuth errors are (message is the error code, expose,
// statusCode), so that oidc-provider answers it as `temporarily_unavailable` with
// status 503, in JSON or through renderError, and so do our routes (status, expose).
export class DatabaseUnavailable extends Error {
  readonly status = 503;
  readonly statusCode = 503;
  readonly expose = true;
  // At the authorization endpoint the answer goes back to the site (RFC 6749 4.1.2.1).
  readonly allow_redirect = true;
  readonly error = 'temporarily_unavailable';
  readonly error_description = 'the service is briefly unavailable; try again in a few seconds';

  constructor(cause: unknown) {
    super('temporarily_unavailable', { cause });
    this.name = 'DatabaseUnavailable';
  }

  // What went wrong underneath, in a few words for an operator: a code, else a message.
  get reason(): string {
    let err: unknown = this.cause;
    for (let depth = 0; err instanceof Error && depth < 3; depth++) {
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && code) return `${code}${err.message && !err.message.includes(code) ? `: ${err.message}` : ''}`;
      if (err.message) return err.message;
      err = err instanceof AggregateError ? err.errors[0] : err.cause;
    }
    return 'no answer';
  }
}

export function unavailableIfLost(err: unknown): unknown {
  return !(err instanceof DatabaseUnavailable) && isConnectionError(err) ? new DatabaseUnavailable(err) : err;
}
