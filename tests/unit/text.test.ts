import { describe, expect, it } from 'vitest';
import { issuesOf } from '../../src/errors.ts';
import { englishText, problemCode } from '../../src/problems.ts';
import { jsonTextProblem, opaqueId, text } from '../../src/validation/text.ts';

// The one rule for free text: what it refuses, what it lets through untouched.

const name = text({ max: 20 }).min(2, problemCode('too_short'));
const problem = (value: unknown) => {
  const r = name.safeParse(value);
  return r.success ? undefined : issuesOf(r.error)[0]!.message;
};

describe('text', () => {
  it('trims what surrounds the text (spaces, a pasted tab or line break) before checking it', () => {
    expect(name.parse(' \t郑州公司\r\n')).toBe('郑州公司');
  });

  it('refuses NUL and every other control character, naming the one it found', () => {
    for (const c of ['\u0000', '\u0001', '\t', '\n', '\r', '\u001b', '\u007f', '\u0085', '\u009f']) {
      expect(problem(`郑州${c}公司`)).toBe(`must not contain control characters such as NUL, tabs or line breaks (found U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')})`);
    }
  });

  it('refuses broken UTF-16 (a lone surrogate) and text direction overrides', () => {
    expect(problem('ab\uD800')).toBe('must be valid Unicode text (it holds a broken character)');
    expect(problem('\uDFFFab')).toBe('must be valid Unicode text (it holds a broken character)');
    for (const c of ['\u202A', '\u202E', '\u2066', '\u2069']) expect(problem(`ab${c}cd`)).toMatch(/^must not contain text direction overrides/);
  });

  it('takes Chinese, emoji, joiners and direction marks as they are', () => {
    for (const value of ['河南省中小企业', '👩🏽‍💻 团队', 'שלום\u200F abc', "O'Brien & <Co>"]) expect(name.parse(value)).toBe(value);
  });

  it('bounds the length and keeps the schema’s own checks and messages', () => {
    expect(problem('x'.repeat(21))).toBe('must be at most 20 characters');
    expect(problem('  a ')).toBe('must be at least 2 characters');
    expect(problem(42)).toBe('must be text');
    expect(issuesOf(text({ max: 5, error: 'audit_date' }).safeParse(undefined).error!)[0]).toMatchObject({ code: 'audit_date', message: expect.stringMatching(/^must be a date/) });
  });
});

describe('opaque ids and stored JSON', () => {
  it('takes only the characters ids are made of', () => {
    const id = opaqueId('client');
    expect(id.parse('sme-passport-account-center')).toBe('sme-passport-account-center');
    for (const bad of ['', 'a b', 'a/b', 'a\u0000b', 'x'.repeat(201), '郑州']) expect(id.safeParse(bad).success).toBe(false);
  });

  it('finds a bad value or member name anywhere inside a JSON value', () => {
    expect(jsonTextProblem({ keys: [{ kty: 'EC', kid: 'ok' }] })).toBeUndefined();
    expect(englishText(jsonTextProblem({ keys: [{ kty: 'EC', kid: 'a\u0000' }] })!)).toMatch(/^keys: kid: must not contain control characters/);
    expect(englishText(jsonTextProblem({ params: { ['x\u0000']: 1 } })!)).toMatch(/^params: a member name must not contain control characters/);
  });
});
