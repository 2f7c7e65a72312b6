// The Unified Social Credit Code (统一社会信用代码), GB 32100-2015, with the organisation
// code inside it checked per GB 11714 (DOMAIN.md gives both algorithms and vectors).

import { problem, type Problem } from '../problems.ts';

const CHARSET = '0123456789ABCDEFGHJKLMNPQRTUWXY'; // no I, O, S, V, Z
const WEIGHTS = Array.from({ length: 17 }, (_, i) => 3 ** i % 31);
const ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2];
const KNOWN_AUTHORITIES = new Set(['1', '5', '9', 'Y']);

export type UsccResult =
  | { valid: true; code: string; warnings: Problem[] }
  | { valid: false; code: string; errors: Problem[] };

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
  if (code.length !== 18) return { valid: false, code, errors: [problem('uscc_length', { length: code.length })] };
  const bad = [...code].findIndex((c) => !CHARSET.includes(c));
  if (bad >= 0) return { valid: false, code, errors: [problem('uscc_character', { position: bad + 1, character: code[bad]! })] };
  const errors: Problem[] = [];
  const orgCheck = orgCodeCheckChar(code.slice(8, 16));
  if (code[16] !== orgCheck) errors.push(problem('uscc_org_check', { expected: orgCheck }));
  const check = usccCheckChar(code.slice(0, 17));
  if (code[17] !== check) errors.push(problem('uscc_check', { expected: check }));
  if (errors.length) return { valid: false, code, errors };
  const warnings = KNOWN_AUTHORITIES.has(code[0]!) ? [] : [problem('uscc_authority', { authority: code[0]! })];
  return { valid: true, code, warnings };
}

// Completes a 16-character body (authority, type, region, organisation code body) into
// a valid code: used by the demo, the tests and the benchmark's generator.
export function completeUscc(body16: string): string {
  const body17 = body16 + orgCodeCheckChar(body16.slice(8, 16));
  return body17 + usccCheckChar(body17);
}
