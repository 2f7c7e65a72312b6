import type { Context, Next } from 'koa';

// Records made from the provider's events (sign-out, back-channel logout, tokens,
// windows served) belong to the request that caused them: the request waits for them,
// and fails if one cannot be written, rather than answering as if it were on record.

const PENDING = Symbol('pending audit records');
type State = { [PENDING]?: Array<Promise<unknown>> };

export function recordWithRequest(ctx: Context | undefined, record: Promise<unknown>, onOrphanFailure: (err: unknown) => void): void {
  // Keep a rejection handled until the request looks at it.
  const settled = record.then(
    () => undefined,
    (err: unknown) => err ?? new Error('an audit record could not be written'),
  );
  if (!ctx) {
    void settled.then((err) => err && onOrphanFailure(err));
    return;
  }
  ((ctx.state as State)[PENDING] ??= []).push(settled);
}

export async function awaitRequestRecords(ctx: Context, next: Next): Promise<void> {
  await next();
  const pending = (ctx.state as State)[PENDING];
  if (!pending) return;
  const failed = (await Promise.all(pending)).find((err) => err !== undefined);
  if (failed) throw failed;
}
