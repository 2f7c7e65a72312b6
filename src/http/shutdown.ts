import http from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { answerNotServing } from './not-serving.ts';

// A node that stops without anyone noticing (README, "Stopping"). Behind a balancer
// without active health checks (open-source nginx) the node itself has to make the
// balancer move away before it stops listening: a connection the kernel accepted but
// the process did not yet take is reset when the listening socket closes, and a
// balancer sends a POST it had written there to no other node. So, once stopping:
// /readyz answers 503; a request a balancer sends again elsewhere (every method but
// the non-idempotent ones) is answered 503 at once with nothing done, which also makes
// nginx count the node as failed and send it nothing for a while; what it would not
// send again is served; every response closes its connection. Once no request has come
// for QUIET_MS the node stops listening, finishes what is in flight within the grace
// period, and cuts what is left.

// Long enough for a balancer that saw a 503 to have stopped sending here.
export const QUIET_MS = 1000;

// What nginx does not send to another node once it reached this one (its
// "non-idempotent" methods), so this node serves them to the end.
const NOT_SENT_AGAIN = new Set(['POST', 'PATCH', 'LOCK']);

type StopOptions = {
  // Wait for the balancer to move away first (SIGTERM); without it (SIGINT, tests)
  // the node stops listening at once.
  drain: boolean;
  graceMs: number;
};

export type StoppableServer = {
  server: http.Server;
  // Resolves once every connection is closed, with the number of requests cut at the
  // end of the grace period (0 when all finished).
  stop(options: StopOptions): Promise<{ cut: number }>;
};

export function stoppableServer(serve: http.RequestListener): StoppableServer {
  let stopping = false;
  const inFlight = new Set<http.ServerResponse>();
  let lastArrival = -Infinity;
  const server = http.createServer((req, res) => {
    lastArrival = performance.now();
    if (stopping) {
      res.setHeader('Connection', 'close');
      if (!NOT_SENT_AGAIN.has(req.method ?? '')) {
        answerNotServing('stopping', req, res);
        return;
      }
    }
    inFlight.add(res);
    res.once('close', () => inFlight.delete(res));
    serve(req, res);
  });

  return {
    server,
    async stop({ drain, graceMs }) {
      stopping = true;
      // What was asked before and is answered now must not promise a connection that
      // is about to close: a balancer would send its next request on it.
      for (const res of inFlight) if (!res.headersSent) res.setHeader('Connection', 'close');
      const started = performance.now();
      const timers = new AbortController();
      try {
        if (drain) {
          for (;;) {
            await delay(50, undefined, { signal: timers.signal });
            // A timer runs before the event loop takes what has arrived: after a stall
            // (a long GC, a starved CPU) requests may be waiting unseen. Let it take
            // them first, then judge the quiet.
            await new Promise<void>((resolve) => setImmediate(resolve));
            if (performance.now() - lastArrival >= QUIET_MS || performance.now() - started >= graceMs / 2) break;
          }
        }
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const left = Math.max(0, graceMs - (performance.now() - started));
        const finished = await Promise.race([closed.then(() => true), delay(left, false, { signal: timers.signal })]);
        if (finished) return { cut: 0 };
        const cut = inFlight.size;
        server.closeAllConnections();
        await closed;
        return { cut };
      } finally {
        timers.abort();
      }
    },
  };
}
