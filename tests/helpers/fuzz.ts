import fc from 'fast-check';
import { afterAll } from 'vitest';

// Property-based fuzzing, the same way in every file: hostile strings, a fixed seed
// (FUZZ_SEED, printed with the tally when the file ends; a failure re-runs exactly with
// the same FUZZ_SEED), a bounded number of runs per target (FUZZ_RUNS), and a tally of
// what each target answered.

export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20261130);
export const fuzzRuns = (fallback: number) => Number(process.env.FUZZ_RUNS ?? fallback);

// What an attacker types: PostgreSQL's NUL (often: it is what breaks things),
// control characters, broken UTF-16, text direction marks and overrides, SQL and HTML
// metacharacters, and values far longer than any field takes.
const CONTROL = ['\u0000', '\u0000', '\u0000', '\u0000', '\u0001', '\u0008', '\t', '\n', '\r\n', '\u001b[31m', '\u007f', '\u0085', '\u009b'];
const UNICODE = ['\uD800', '\uDBFF', '\uDC00', '\uDFFF', '\uFFFE', '\uFEFF', '\u200E', '\u200F', '\u202A', '\u202E', '\u2066', '\u2069', '\u061C', '郑州市', '👍🏽'];
const META = [
  "'", '"', '`', '\\', '%', '_', "' OR '1'='1", "'; DROP TABLE accounts; --", '$1', '%00', '%ZZ', '%E0%A4%A',
  '<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', '&amp;', '{{7*7}}', '<%= it %>',
  '../../etc/passwd', 'javascript:alert(1)', 'https://evil.example/cb', '__proto__', 'constructor',
];
const LONG = ['a'.repeat(300), 'x'.repeat(10_000)];

const piece = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...CONTROL) },
  { weight: 2, arbitrary: fc.constantFrom(...UNICODE) },
  { weight: 2, arbitrary: fc.constantFrom(...META) },
  { weight: 1, arbitrary: fc.constantFrom(...LONG) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }) },
);

// Mostly a hostile piece inside text that looks plausible (so it gets past length and
// shape checks to wherever it could do harm), else pieces strung together, else
// anything at all.
export const hostileText = (): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.tuple(fc.constantFrom('', 'ab', '郑州', 'name '), piece, fc.constantFrom('', 'x', '公司')).map((parts) => parts.join('')) },
    { weight: 2, arbitrary: fc.array(piece, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('')) },
    { weight: 1, arbitrary: fc.string() },
  );

// Payloads that must never come back raw in an HTML page (escaped, they are harmless).
export const REFLECTION_MARKERS = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>'];
export const reflectsRaw = (html: string): string | undefined => REFLECTION_MARKERS.find((m) => html.includes(m));

// Percent-encoding for a URL or a form body that keeps what encodeURIComponent refuses:
// a lone surrogate goes out as the bytes it would be in WTF-8, which are not UTF-8.
export function percentEncode(value: string): string {
  let out = '';
  for (const ch of value) {
    const unit = ch.charCodeAt(0);
    const bytes =
      ch.length === 1 && unit >= 0xd800 && unit <= 0xdfff ? [0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3f), 0x80 | (unit & 0x3f)] : [...Buffer.from(ch, 'utf8')];
    out += /^[A-Za-z0-9_.~-]$/.test(ch) ? ch : bytes.map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  }
  return out;
}

export const formBody = (fields: Record<string, string | string[]>): string =>
  Object.entries(fields)
    .flatMap(([k, v]) => [v].flat().map((one) => `${percentEncode(k)}=${percentEncode(one)}`))
    .join('&');

// Cases tried and their answers by class (2xx, 3xx, 4xx, 5xx), per target; printed at
// the end of the file.
export function tally(file: string) {
  const counts = new Map<string, Record<string, number>>();
  afterAll(() => {
    const lines = [...counts].map(([target, c]) => {
      const tried = Object.values(c).reduce((a, b) => a + b, 0);
      return `  ${target}: ${tried} cases, ${c['5xx'] ?? 0} answered 5xx (${Object.entries(c).sort().map(([k, v]) => `${k} ${v}`).join(', ')})`;
    });
    console.log(`fuzzing ${file} (FUZZ_SEED=${FUZZ_SEED}):\n${lines.join('\n')}`);
  });
  return (target: string, status: number) => {
    const c = counts.get(target) ?? {};
    const kind = `${Math.floor(status / 100)}xx`;
    c[kind] = (c[kind] ?? 0) + 1;
    counts.set(target, c);
  };
}

// Each target gets its own seed, derived from FUZZ_SEED and its name, so targets do not
// all try the same values; the same FUZZ_SEED replays every target exactly.
export const fuzzOptions = (target: string, numRuns: number) => {
  let seed = FUZZ_SEED | 0;
  for (const ch of target) seed = (Math.imul(seed, 31) + ch.charCodeAt(0)) | 0;
  return { seed, numRuns, endOnFailure: true };
};
