import { z } from 'zod';
import { problem, problemCode, type Problem } from '../problems.ts';

// The one rule for text that people and programs send us, before it reaches a query,
// a page or a log: PostgreSQL refuses NUL in text, control characters and broken
// UTF-16 (lone surrogates) are never part of a name, an id or an address, and the
// direction overrides (U+202A-202E, U+2066-2069) make a name read differently from
// what it is. Every schema that takes free text builds on text().

// C0 and C1 controls (NUL, tab, line breaks, DEL...) and the bidirectional embeddings,
// overrides and isolates.
const FORBIDDEN = /[\p{Cc}\u202A-\u202E\u2066-\u2069]/u;

export function textProblem(value: string): Problem | undefined {
  if (!value.isWellFormed()) return problem('text_broken');
  const bad = FORBIDDEN.exec(value)?.[0];
  if (bad === undefined) return undefined;
  const char = `U+${bad.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
  return /\p{Cc}/u.test(bad) ? problem('text_control', { char }) : problem('text_direction', { char });
}

// Free text of at most `max` characters, trimmed first (a pasted name may end in a
// tab or a line break); `error` (a problem code) says what is expected when the value is
// missing or not a string. The refinement is a check of the string schema itself, so callers chain
// .min() and .regex() as on any z.string().
export const text = (o: { max: number; error?: Parameters<typeof problemCode>[0] }) =>
  z
    .string({ error: problemCode(o.error ?? 'text') })
    .trim()
    .max(o.max, problemCode('too_long'))
    .superRefine((value, ctx) => {
      const found = textProblem(value);
      if (found) ctx.addIssue({ code: 'custom', message: found.code, params: found.params, abort: true });
    });

// Ids that reach SQL as they are: what a client id or a key id can be.
export const opaqueId = (what: 'client' | 'key' | 'session') =>
  z.string({ error: problemCode(`${what}_id`) }).regex(/^[A-Za-z0-9._~:-]{1,200}$/, problemCode(`${what}_id_chars`));

// The first problem with any member name or string value inside a JSON value that is
// stored as it is (jsonb refuses \u0000 as well).
export function jsonTextProblem(value: unknown): Problem | undefined {
  if (typeof value === 'string') return textProblem(value);
  if (typeof value !== 'object' || value === null) return undefined;
  for (const [key, inner] of Object.entries(value)) {
    const keyProblem = Array.isArray(value) ? undefined : textProblem(key);
    if (keyProblem) return problem('json_member_name', { problem: [keyProblem] });
    const found = jsonTextProblem(inner);
    if (found) return Array.isArray(value) ? found : problem('json_member', { name: key, problem: [found] });
  }
  return undefined;
}
