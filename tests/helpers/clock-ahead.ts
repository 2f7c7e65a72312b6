// Preloaded into an example's process (node --import) to run its clock CLOCK_AHEAD_SECONDS
// ahead: the process judges a token as it would that much later. A window API's tokens
// live at least 60 s (window_apis_ttl_check), so a test of their expiry moves the API's
// clock past that instead of waiting a minute.
const ahead = Number(process.env.CLOCK_AHEAD_SECONDS) * 1000;
const RealDate = Date;

class AheadDate extends RealDate {
  constructor(...args: unknown[]) {
    super(...((args.length === 0 ? [RealDate.now() + ahead] : args) as [number]));
  }

  static override now() {
    return RealDate.now() + ahead;
  }
}

globalThis.Date = AheadDate as DateConstructor;
