import net from 'node:net';

// A TCP relay between the code under test and PostgreSQL, to cut the network the way a
// restart, a failover or a broken link does, without touching the shared database server.
//   up():                 relay everything (the start).
//   down():               close every connection and refuse (close) new ones at once.
//   dropOnNextWrite():    connections open now die silently when next used (the peer is
//                         gone and nobody said so); new ones are relayed.
export type TcpProxy = { port: number; connections: () => number; up(): void; down(): void; dropOnNextWrite(): void; close(): Promise<void> };

export async function tcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let mode: 'up' | 'down' = 'up';
  let opened = 0;
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket; doomed: boolean }>();
  const server = net.createServer((client) => {
    if (mode === 'down') return client.destroy();
    opened++;
    const upstream = net.connect(target.port, target.host);
    const pair = { client, upstream, doomed: false };
    pairs.add(pair);
    const end = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('data', (chunk) => (pair.doomed ? end() : upstream.write(chunk)));
    upstream.on('data', (chunk) => client.write(chunk));
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const killAll = () => {
    for (const { client, upstream } of pairs) {
      client.destroy();
      upstream.destroy();
    }
    pairs.clear();
  };
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => opened,
    up: () => {
      mode = 'up';
    },
    down: () => {
      mode = 'down';
      killAll();
    },
    dropOnNextWrite: () => {
      for (const pair of pairs) pair.doomed = true;
    },
    close: async () => {
      killAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
