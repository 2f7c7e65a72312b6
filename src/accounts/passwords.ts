import os from 'node:os';
import argon2 from 'argon2';
import pLimit, { type LimitFunction } from 'p-limit';
import { countPasswordCheck } from '../http/metrics.ts';

// argon2id with OWASP's headline parameters (DOMAIN.md). The PHC string keeps the
// parameters with the hash, so a change here rehashes at the next sign-in.
const params = { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

// Each hash in flight holds 19 MiB and a core. A node computes at most `concurrency` at
// once (its cores by default) and keeps at most `queue` more waiting; past that a
// request is refused at once with PasswordHashingBusy (503, Retry-After) instead of
// piling up: memory stays bounded, and a flood of sign-ins costs the flood, not the
// people behind it. Per process, set once at start (config.ts).
export type HashingLimits = { concurrency: number; queue: number };

export const defaultHashingConcurrency = (): number => os.availableParallelism();

let limits: HashingLimits = { concurrency: defaultHashingConcurrency(), queue: 64 };
let limit: LimitFunction = pLimit(limits.concurrency);
// Places taken: waiting for a core, computing, or reserved by a request that has not
// handed its work over yet.
let taken = 0;

export function setHashingLimits(next: HashingLimits): void {
  limits = next;
  limit = pLimit(next.concurrency);
}

export class PasswordHashingBusy extends Error {
  readonly status = 503;
  readonly expose = true;
  readonly error = 'temporarily_unavailable';
  // The queue is a second or so of work at most.
  readonly retryAfterSeconds = 1;
  constructor() {
    super('too many passwords are being checked on this node; try again in a moment');
    this.name = 'PasswordHashingBusy';
  }
}

// A place in the queue, taken before a request writes anything (sign-in counts its
// attempt first), so that a full queue refuses the request with nothing changed.
// Whatever way the request goes, it gives the place back: by using it, or by release().
export type HashingPlace = { release(): void };

export function reserveHashing(): HashingPlace {
  if (taken >= limits.concurrency + limits.queue) throw new PasswordHashingBusy();
  taken++;
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      taken--;
    },
  };
}

// Async, so that a full queue is a rejected promise, which callers can catch like any
// other failure of the hash, and not an exception thrown before there is a promise.
async function inQueue<T>(work: () => Promise<T>, reserved?: HashingPlace): Promise<T> {
  const place = reserved ?? reserveHashing();
  try {
    return await limit(work);
  } finally {
    place.release();
  }
}

export const hashPassword = (password: string): Promise<string> => inQueue(() => argon2.hash(password, params));

export const needsRehash = (hash: string): boolean => argon2.needsRehash(hash, params);

// Made once, outside the queue, so that no request ever waits on another's place for it.
let dummyHash: Promise<string> | undefined;

// Verifies against a real hash, or against a throwaway one when there is no account,
// so an unknown identifier costs the same time as a wrong password.
export async function verifyPassword(hash: string | undefined, password: string, place?: HashingPlace): Promise<boolean> {
  const own = place ?? reserveHashing();
  try {
    const against = hash ?? (await (dummyHash ??= argon2.hash('unknown-account-placeholder', params)));
    return await inQueue(async () => {
      countPasswordCheck();
      return (await argon2.verify(against, password)) && hash !== undefined;
    }, own);
  } finally {
    own.release();
  }
}
