// Waits for something another party does in its own time (a back-channel logout to
// arrive, a node to pick up new keys): the first probe result that is neither
// undefined nor false. The ceiling is one generous patience for every wait: reached
// only when the thing never happens, it costs nothing when it does, and a busy
// machine (a load of 10 or more on two cores) must not turn a slow success into a failure.
export const PATIENCE_MS = 60_000;

export async function eventually<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, options: { every?: number } = {}): Promise<T> {
  const end = Date.now() + PATIENCE_MS;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > end) throw new Error(`timed out waiting (${PATIENCE_MS / 1000} s)`);
    await new Promise((resolve) => setTimeout(resolve, options.every ?? 25));
  }
}
