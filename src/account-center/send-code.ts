import type { Context } from 'koa';
import type { Db } from '../db/connect.ts';
import { findAccountByIdentifier, type Account } from '../accounts/accounts.ts';
import { issueCode, ResendTooSoon, type CodePurpose } from '../accounts/codes.ts';
import type { CodeMessages } from './register.ts';

// The one way a page sends a code: issue it for the address (throttled), then let the
// caller decide, from the account that holds the address (if any), what message goes
// out, if one does. A throttled request is answered with Retry-After, and the
// seconds to wait are returned.
export async function sendCode(
  ctx: Context,
  db: Db,
  messages: CodeMessages,
  purpose: CodePurpose,
  contact: { channel: 'sms' | 'email'; destination: string },
  compose: (code: string, holder: Account | undefined) => { subject: string; body: string } | undefined,
): Promise<number | undefined> {
  try {
    const code = await issueCode(db, messages.codeKey, purpose, contact.destination);
    const message = compose(code, await findAccountByIdentifier(db, contact.destination));
    if (message && messages.sender.channels.has(contact.channel)) await messages.sender.send({ ...contact, ...message });
    return undefined;
  } catch (err) {
    if (!(err instanceof ResendTooSoon)) throw err;
    ctx.set('Retry-After', String(err.retryAfter));
    return err.retryAfter;
  }
}
