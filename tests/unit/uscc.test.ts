import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkUscc as check, completeUscc, orgCodeCheckChar, usccCheckChar } from '../../src/enterprises/uscc.ts';
import { englishText } from '../../src/problems.ts';

// The check names problems by code; their English texts are what the CLI prints.
const checkUscc = (input: string) => {
  const r = check(input);
  return r.valid ? { ...r, warnings: r.warnings.map(englishText) } : { ...r, errors: r.errors.map(englishText) };
};

const CHARSET = '0123456789ABCDEFGHJKLMNPQRTUWXY';

describe('Unified Social Credit Code (GB 32100-2015)', () => {
  it('accepts the valid vectors of DOMAIN.md, trimmed and upper-cased', () => {
    for (const code of ['91410000170001401D', '91440300192317458F', '914403001922038216']) {
      expect(checkUscc(code)).toEqual({ valid: true, code, warnings: [] });
    }
    expect(checkUscc('  91410000170001401d \n')).toMatchObject({ valid: true, code: '91410000170001401D' });
  });

  it('says which check fails', () => {
    expect(checkUscc('91410000170001401E')).toEqual({ valid: false, code: '91410000170001401E', errors: ['the check character (character 18) should be D'] });
    const both = checkUscc('91410000170001402D');
    expect(both.valid).toBe(false);
    expect(!both.valid && both.errors).toEqual([expect.stringMatching(/organisation code check \(character 17\)/), expect.stringMatching(/check character \(character 18\)/)]);
    expect(checkUscc('9141000017000140')).toMatchObject({ valid: false, errors: ['must be 18 characters, not 16'] });
    expect(checkUscc('9141000017000I401D')).toMatchObject({ valid: false, errors: [expect.stringMatching(/character 14 \("I"\) is not allowed/)] });
  });

  it('warns of an unknown registration authority without rejecting', () => {
    const code = completeUscc('A1410000MA123456'.replace('A', '7'));
    expect(checkUscc(code)).toMatchObject({ valid: true, warnings: [expect.stringMatching(/registration authority "7"/)] });
  });

  const body16 = fc.array(fc.constantFrom(...CHARSET), { minLength: 16, maxLength: 16 }).map((cs) => cs.join(''));

  it('validates any body completed with its computed check characters', () => {
    fc.assert(fc.property(body16, (body) => checkUscc(completeUscc(body)).valid));
  });

  it('rejects any code with one character changed', () => {
    fc.assert(
      fc.property(body16, fc.integer({ min: 0, max: 17 }), fc.integer({ min: 1, max: 30 }), (body, position, shift) => {
        const code = completeUscc(body);
        const changed = CHARSET[(CHARSET.indexOf(code[position]!) + shift) % 31]!;
        const mutated = code.slice(0, position) + changed + code.slice(position + 1);
        // GB 11714's mod-11 check cannot see every change of an org-code character alone,
        // but the final mod-31 check over all 17 characters always does.
        return !checkUscc(mutated).valid;
      }),
    );
  });

  it('computes the check characters the standard defines', () => {
    expect(orgCodeCheckChar('17000140')).toBe('1');
    expect(usccCheckChar('91410000170001401')).toBe('D');
  });
});
