// The Unified Social Credit Code (统一社会信用代码), GB 32100-2015, with the organisation
// code inside it checked per GB 11714 (DOMAIN.md gives both algorithms and vectors).

const CHARSET = '0123456789ABCDEFGHJKLMNPQRTUWXY'; // no I, O, S, V, Z
const WEIGHTS = Array.from({ length: 17 }, (_, i) => 3 ** i % 31);
const ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2];
const KNOWN_AUTHORITIES = new Set(['1', '5', '9', 'Y']);

export type UsccResult =
  | { valid: true; code: string; warnings: string[] }
  | { valid: false; code: string; errors: string[] };

// The value of a character in the organisation code: 0-9, then A=10 ... Z=35.
const orgValue = (c: string) => (c >= '0' && c <= '9' ? c.charCodeAt(0) - 48 : c.charCodeAt(0) - 55);

export function orgCodeCheckChar(body8: string): string {
  const sum = [...body8].reduce((acc, c, i) => acc + orgValue(c) * ORG_WEIGHTS[i]!, 0);
  const c = 11 - (sum % 11);
  return c === 10 ? 'X' : c === 11 ? '0' : String(c);
}

export function usccCheckChar(body17: string): string {
  const sum = [...body17].reduce((acc, c, i) => acc + CHARSET.indexOf(c) * WEIGHTS[i]!, 0);
  return CHARSET[(31 - (sum % 31)) % 31]!;
}

export function normaliseUscc(input: string): string {
  return input.trim().toUpperCase();
}

export function checkUscc(input: string): UsccResult {
  const code = normaliseUscc(input);
  if (code.length !== 18) return { valid: false, code, errors: [`must be 18 characters, not ${code.length}`] };
  const bad = [...code].findIndex((c) => !CHARSET.includes(c));
  if (bad >= 0) return { valid: false, code, errors: [`character ${bad + 1} ("${code[bad]}") is not allowed: only 0-9 and A-Y without I, O, S, V, Z`] };
  const errors: string[] = [];
  if (code[16] !== orgCodeCheckChar(code.slice(8, 16))) errors.push(`the organisation code check (character 17) should be ${orgCodeCheckChar(code.slice(8, 16))}`);
  if (code[17] !== usccCheckChar(code.slice(0, 17))) errors.push(`the check character (character 18) should be ${usccCheckChar(code.slice(0, 17))}`);
  if (errors.length) return { valid: false, code, errors };
  const warnings = KNOWN_AUTHORITIES.has(code[0]!) ? [] : [`registration authority "${code[0]}" is not one of 1, 5, 9, Y`];
  return { valid: true, code, warnings };
}

// Completes a 16-character body (authority, type, region, organisation code body) into
// a valid code: used by the demo, the tests and the benchmark's generator.
export function completeUscc(body16: string): string {
  const body17 = body16 + orgCodeCheckChar(body16.slice(8, 16));
  return body17 + usccCheckChar(body17);
}
