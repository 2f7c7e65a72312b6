import { recordEvent } from '../../audit/trail.ts';
import { ForbiddenError, InputError, parseInput, RoleRequiredError } from '../../errors.ts';
import type { Operation, Result, Services } from './operations.ts';
import type { Principal } from './token.ts';

// One call of one operation, however it arrives (HTTP or the console): the role
// check, input validation, the change and its audit record.

export type Input = { params?: Record<string, string>; query?: Record<string, unknown>; body?: unknown; ip: string };

const isEmpty = (body: unknown) => body === undefined || (typeof body === 'object' && body !== null && Object.keys(body).length === 0);

export async function invoke(services: Services, op: Operation, who: Principal, input: Input): Promise<Result> {
  const { db } = services;
  const event = `admin.${op.id}`;
  const actor = { type: 'account' as const, id: who.accountId };
  // A refusal keeps its problem (field, code, parameters) beside the English reason, so the
  // console reads it in the reader's language.
  const refused = (reason: string, err?: InputError) =>
    recordEvent(db, { actor, ip: input.ip, event, outcome: 'failure', reason, ...(err && { after: { problem: { field: err.field, code: err.code, params: err.params } } }) });

  if (!op.roles.some((role) => who.roles.some((r) => r.role === role))) {
    await refused('forbidden: role');
    throw new RoleRequiredError(op.roles);
  }
  const call = {
    who,
    services,
    params: op.params ? parseInput(op.params, input.params ?? {}) : undefined,
    query: op.query ? parseInput(op.query, input.query ?? {}) : undefined,
    body: op.body ? parseInput(op.body, isEmpty(input.body) ? undefined : input.body) : undefined,
  };
  if (!op.body && !isEmpty(input.body)) throw new InputError('input', 'no_body');
  if (!op.query && !isEmpty(input.query)) throw new InputError('input', 'no_query');
  if (op.method === 'get') return op.run({ ...call, db });

  try {
    if (op.transactional === false) {
      const result = await op.run({ ...call, db });
      if (result.change) await recordEvent(db, { actor, ip: input.ip, event, outcome: 'success', ...result.change });
      return result;
    }
    return await db.transaction(async (trx) => {
      const result = await op.run({ ...call, db: trx });
      if (result.change) await recordEvent(trx, { actor, ip: input.ip, event, outcome: 'success', ...result.change });
      return result;
    });
  } catch (err) {
    if (err instanceof InputError) await refused(`${err instanceof ForbiddenError ? 'forbidden' : 'refused'}: ${err.message}`, err);
    throw err;
  }
}
