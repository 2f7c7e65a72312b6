import type { Actor } from './trail.ts';

// Who did it, for records of what people do: the account when it is known, and
// otherwise someone not signed in (a failed sign-in with an unknown identifier).
export const personActor = (accountId: string | undefined): Actor => (accountId ? { type: 'account', id: accountId } : { type: 'system', id: 'anonymous' });
