import crypto from 'node:crypto';
import type Provider from 'oidc-provider';
import type { Db } from '../db/connect.ts';
import type { Logger } from '../http/errors.ts';
import { recordEvent } from '../audit/trail.ts';
import { windowOf } from '../windows/clients.ts';
import { sendBackchannelLogout } from './internals.ts';

// Back-channel logout as a delivery: every notification is written here first (the
// sign-out waits for that write), then any node delivers it, one node each, retrying
// with backoff until the window answers or the give-up age is reached.
//
// A node claims due rows in one statement (FOR UPDATE SKIP LOCKED, so two nodes never
// take the same row) and pushes their next_attempt_at LEASE_SECONDS ahead: that is the
// lease. A node that dies while delivering leaves the row to be claimed again when the
// lease runs out; its claim id no longer matches, so a late answer of its changes nothing.
// Each attempt signs a fresh logout token (the library's own sender).

export type DeliverySettings = { firstRetrySeconds: number; maxRetrySeconds: number; giveUpSeconds: number };

export type LogoutNotice = { clientId: string; windowId: number | null; accountId: string; sid: string };

const LEASE_SECONDS = 60;
const BATCH = 20;
// How often an idle node looks for work it was not woken for (another node, the command
// line, a retry coming due): two indexed statements.
const POLL_MS = 5000;
const MAX_ERROR_CHARS = 500;

// The delivery loops of this process, woken when a notification is queued here.
const wakers = new Set<() => void>();

export async function enqueueLogout(db: Db, n: LogoutNotice): Promise<void> {
  await db('logout_deliveries').insert({ client_id: n.clientId, window_id: n.windowId, account_id: n.accountId, sid: n.sid });
  for (const wake of wakers) wake();
}

// The notice for a client of the provider (its window read from the client's metadata).
export const noticeFor = (client: { clientId: string; [key: string]: unknown }, accountId: string, sid: string): LogoutNotice => ({
  clientId: client.clientId,
  windowId: windowOf(client),
  accountId,
  sid,
});

export type Claimed = { id: string; client_id: string; window_id: number | null; account_id: string; sid: string; attempts: number; claim: string };

// Due deliveries, each held by this claim for LEASE_SECONDS.
export async function claimDue(db: Db, limit = BATCH): Promise<Claimed[]> {
  const { rows } = (await db.raw(
    `UPDATE logout_deliveries SET claim = ?, next_attempt_at = now() + make_interval(secs => ?)
     WHERE id IN (SELECT id FROM logout_deliveries WHERE state = 'pending' AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT ? FOR UPDATE SKIP LOCKED)
     RETURNING id, client_id, window_id, account_id, sid, attempts, claim`,
    [crypto.randomUUID(), LEASE_SECONDS, limit],
  )) as { rows: Claimed[] };
  return rows;
}

// Exponential from the first delay, capped, with jitter (half to all of it) so that the
// notifications of one outage do not all come back at once.
export function retryDelaySeconds(s: DeliverySettings, attempts: number): number {
  const full = Math.min(s.maxRetrySeconds, s.firstRetrySeconds * 2 ** Math.min(attempts - 1, 30));
  return full / 2 + (Math.random() * full) / 2;
}

type Attempt = { delivered: boolean; httpStatus?: number; error?: string; durationMs: number; final?: boolean };

// What went wrong, for the operator: the library's message, and the system error under
// a failed fetch (ECONNREFUSED and the like).
function describe(err: unknown): { httpStatus?: number; error: string } {
  const e = err as { message?: unknown; response?: { status?: unknown }; cause?: { code?: unknown } } | undefined;
  const code = typeof e?.cause?.code === 'string' ? ` (${e.cause.code})` : '';
  const status = typeof e?.response?.status === 'number' ? e.response.status : undefined;
  const error = `${typeof e?.message === 'string' ? e.message : String(err)}${code}`.slice(0, MAX_ERROR_CHARS);
  return status === undefined ? { error } : { httpStatus: status, error };
}

async function attempt(provider: Provider, row: Claimed): Promise<Attempt> {
  const started = performance.now();
  const took = () => Math.round(performance.now() - started);
  try {
    // A client the provider cannot load (the database out of reach) is a failed attempt
    // like any other; one that is gone (disabled, deleted, or without the URI now) will
    // never be told, and is given up on at once.
    const client = await provider.Client.find(row.client_id);
    if (!client) return { delivered: false, error: 'the client is disabled or deleted', durationMs: took(), final: true };
    if (!client.backchannelLogoutUri) return { delivered: false, error: 'the client has no back-channel logout URI any more', durationMs: took(), final: true };
    await sendBackchannelLogout(provider, client, row.account_id, row.sid);
    return { delivered: true, durationMs: took() };
  } catch (err) {
    return { delivered: false, ...describe(err), durationMs: took() };
  }
}

type Settled = { state: 'pending' | 'delivered' | 'abandoned'; attempts: number };

// The attempt goes on record; the delivery changes only while this claim holds it. A
// delivery settled (delivered, or abandoned) goes on the audit trail in the same
// transaction: one record per notification, its attempts being in logout_delivery_attempts.
export async function settle(db: Db, settings: DeliverySettings, row: Claimed, a: Attempt): Promise<Settled | undefined> {
  return db.transaction(async (trx) => {
    await trx('logout_delivery_attempts').insert({
      delivery_id: row.id,
      outcome: a.delivered ? 'delivered' : 'failed',
      http_status: a.httpStatus ?? null,
      error: a.error ?? null,
      duration_ms: a.durationMs,
    });
    const giveUp = 'created_at + make_interval(secs => ?)';
    const [settled] = (await (a.delivered
      ? trx('logout_deliveries')
          .where({ id: row.id, claim: row.claim })
          .update({ state: 'delivered', delivered_at: trx.fn.now(), attempts: trx.raw('attempts + 1'), claim: null, last_error: null }, ['state', 'attempts'])
      : trx('logout_deliveries')
          .where({ id: row.id, claim: row.claim })
          .update(
            {
              attempts: trx.raw('attempts + 1'),
              claim: null,
              last_error: a.error ?? null,
              state: trx.raw(`CASE WHEN ? OR now() >= ${giveUp} THEN 'abandoned' ELSE 'pending' END`, [a.final === true, settings.giveUpSeconds]),
              abandoned_at: trx.raw(`CASE WHEN ? OR now() >= ${giveUp} THEN now() END`, [a.final === true, settings.giveUpSeconds]),
              // The last attempt is made at the give-up age, not after it.
              next_attempt_at: trx.raw(`least(now() + make_interval(secs => ?), ${giveUp})`, [retryDelaySeconds(settings, row.attempts + 1), settings.giveUpSeconds]),
            },
            ['state', 'attempts'],
          ))) as Settled[];
    if (settled && settled.state !== 'pending') {
      await recordEvent(trx, {
        actor: { type: 'system' },
        windowId: row.window_id,
        event: 'backchannel_logout',
        target: `client:${row.client_id}`,
        outcome: settled.state === 'delivered' ? 'success' : 'failure',
        ...(settled.state === 'abandoned' && { reason: a.error }),
        after: { accountId: row.account_id, sid: row.sid, attempts: settled.attempts },
      });
    }
    return settled;
  });
}

async function deliver(db: Db, provider: Provider, settings: DeliverySettings, logger: Logger, row: Claimed): Promise<void> {
  const a = await attempt(provider, row);
  const settled = await settle(db, settings, row, a);
  if (settled?.state === 'abandoned') logger.error(`back-channel logout to ${row.client_id} abandoned after ${settled.attempts} attempt${settled.attempts === 1 ? '' : 's'}: ${a.error}`);
}

// Seconds until the next pending delivery is due, or undefined when none is pending.
async function secondsUntilDue(db: Db): Promise<number | undefined> {
  const row = (await db('logout_deliveries').where({ state: 'pending' }).first(db.raw('extract(epoch from min(next_attempt_at) - now()) AS due'))) as { due: string | number | null } | undefined;
  return row?.due === null || row?.due === undefined ? undefined : Number(row.due);
}

export type DeliveryLoop = { stop(): Promise<void> };

// The node's loop: deliver what is due, then sleep until the next is due, at most
// POLL_MS, or until a notification is queued in this process.
export function startLogoutDeliveries(o: { db: Db; provider: () => Provider; settings: DeliverySettings; logger: Logger }): DeliveryLoop {
  let stopped = false;
  let woken = false;
  let wakeUp = () => {};
  const wake = () => {
    woken = true;
    wakeUp();
  };
  wakers.add(wake);
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      timer.unref();
      wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  const run = async () => {
    while (!stopped) {
      woken = false;
      let full = false;
      try {
        const claimed = await claimDue(o.db);
        full = claimed.length === BATCH;
        await Promise.all(claimed.map((row) => deliver(o.db, o.provider(), o.settings, o.logger, row).catch((err) => o.logger.error('delivering a back-channel logout failed', err))));
        if (full || woken || stopped) continue;
        const due = await secondsUntilDue(o.db);
        if (woken || stopped) continue;
        await sleep(due === undefined ? POLL_MS : Math.min(POLL_MS, Math.max(0, due * 1000)));
      } catch (err) {
        o.logger.error('looking for back-channel logouts to deliver failed', err);
        if (!stopped) await sleep(POLL_MS);
      }
    }
  };
  const running = run();
  return {
    async stop() {
      stopped = true;
      wakers.delete(wake);
      wakeUp();
      await running;
    },
  };
}

// What a window's administrators see: over the last `days`, how many notifications were
// delivered of how many settled, the latest failed attempts, and what still waits.
export type DeliveryFigures = {
  days: number;
  total: number;
  delivered: number;
  abandoned: number;
  pending: number;
  // delivered / total, or null when there was nothing to deliver.
  rate: number | null;
  failures: Array<{ at: Date; clientId: string; httpStatus: number | null; error: string | null }>;
  waiting: Array<{ id: string; clientId: string; createdAt: Date; attempts: number; nextAttemptAt: Date; lastError: string | null }>;
};

const LISTED = 20;

export async function deliveryFigures(db: Db, windowId: number, days = 7): Promise<DeliveryFigures> {
  const since = db.raw('now() - make_interval(days => ?)', [days]);
  const counts = (await db('logout_deliveries')
    .where({ window_id: windowId })
    .where('created_at', '>=', since)
    .select('state')
    .count({ n: '*' })
    .groupBy('state')) as Array<{ state: string; n: string | number }>;
  const count = (state: string) => Number(counts.find((c) => c.state === state)?.n ?? 0);
  const failures = (await db('logout_delivery_attempts as a')
    .join('logout_deliveries as d', 'd.id', 'a.delivery_id')
    .where('d.window_id', windowId)
    .where('a.outcome', 'failed')
    .where('a.at', '>=', since)
    .orderBy([{ column: 'a.at', order: 'desc' }, { column: 'a.id', order: 'desc' }])
    .limit(LISTED)
    .select('a.at', 'd.client_id', 'a.http_status', 'a.error')) as Array<{ at: Date; client_id: string; http_status: number | null; error: string | null }>;
  const waiting = (await db('logout_deliveries')
    .where({ window_id: windowId, state: 'pending' })
    .orderBy('created_at')
    .limit(LISTED)
    .select('id', 'client_id', 'created_at', 'attempts', 'next_attempt_at', 'last_error')) as Array<{ id: string | number; client_id: string; created_at: Date; attempts: number; next_attempt_at: Date; last_error: string | null }>;
  const delivered = count('delivered');
  const abandoned = count('abandoned');
  const pending = count('pending');
  const total = delivered + abandoned + pending;
  return {
    days,
    total,
    delivered,
    abandoned,
    pending,
    rate: total === 0 ? null : delivered / total,
    failures: failures.map((f) => ({ at: new Date(f.at), clientId: f.client_id, httpStatus: f.http_status, error: f.error })),
    waiting: waiting.map((w) => ({ id: String(w.id), clientId: w.client_id, createdAt: new Date(w.created_at), attempts: w.attempts, nextAttemptAt: new Date(w.next_attempt_at), lastError: w.last_error })),
  };
}

// Pending deliveries of every window (the metrics gauge).
export async function pendingDeliveries(db: Db): Promise<number> {
  const row = (await db('logout_deliveries').where({ state: 'pending' }).count({ n: '*' }).first()) as { n: string | number } | undefined;
  return Number(row?.n ?? 0);
}

// Settled deliveries and their attempts are kept for KEPT_DAYS (the console shows the
// last week); what is still pending is never purged.
const KEPT_DAYS = 30;

export async function purgeSettledDeliveries(db: Db): Promise<number> {
  return db('logout_deliveries').whereIn('state', ['delivered', 'abandoned']).where('created_at', '<', db.raw('now() - make_interval(days => ?)', [KEPT_DAYS])).delete();
}
