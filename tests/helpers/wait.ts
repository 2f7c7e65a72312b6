// Waits for something another party does in its own time (a back-channel logout to
// arrive, a node to pick up new keys): the first probe result that is neither
// undefined nor false, or a failure after `ms`.
export async function eventually<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, options: { ms?: number; every?: number } = {}): Promise<T> {
  const end = Date.now() + (options.ms ?? 5000);
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, options.every ?? 25));
  }
}
