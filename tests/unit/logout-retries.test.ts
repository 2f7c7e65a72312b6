import { describe, expect, it } from 'vitest';
import { retryDelaySeconds } from '../../src/oidc/logout-deliveries.ts';

describe('back-channel logout retry delays', () => {
  it('double from the first delay up to the longest, each between half and all of it', () => {
    const settings = { firstRetrySeconds: 10, maxRetrySeconds: 3600, giveUpSeconds: 86400 };
    for (let attempts = 1; attempts <= 2000; attempts++) {
      const full = Math.min(3600, 10 * 2 ** (attempts - 1));
      const delay = retryDelaySeconds(settings, attempts);
      expect(delay, `after ${attempts} attempts`).toBeGreaterThanOrEqual(full / 2);
      expect(delay, `after ${attempts} attempts`).toBeLessThanOrEqual(full);
    }
    const spread = new Set(Array.from({ length: 50 }, () => retryDelaySeconds(settings, 3)));
    expect(spread.size).toBeGreaterThan(1);
  });
});
