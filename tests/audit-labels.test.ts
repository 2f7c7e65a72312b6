import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { eventChoices, eventLabel, reasonLabel, RECORDED_EVENTS } from '../src/admin/console/audit-page.ts';
import { OPERATIONS } from '../src/admin/api/operations.ts';
import { LANGS } from '../src/http/i18n.ts';

// The audit trail page's words for the codes on record (src/admin/console/audit-page.ts):
// every event the README lists and every admin operation has a label in both
// languages, and a code the page does not know is shown as it is.

const readmeEvents = () => {
  const readme = fs.readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const table = readme.slice(readme.indexOf('**What is recorded**'), readme.indexOf('Never recorded:'));
  return [...table.matchAll(/^\| ([^|]+) \|/gm)].flatMap((row) => [...row[1]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!)).filter((e) => e !== 'admin.<operation>');
};

describe('audit trail labels', () => {
  it('label every event the README says is recorded, and no other', () => {
    expect(readmeEvents().length).toBeGreaterThan(15);
    expect([...RECORDED_EVENTS].sort()).toEqual(readmeEvents().sort());
  });

  it.each(LANGS)('in %s, read every recorded event and every admin operation as words, not codes', (lang) => {
    for (const event of [...RECORDED_EVENTS, ...OPERATIONS.map((op) => `admin.${op.id}`)]) {
      const label = eventLabel(lang, event);
      expect(label, event).not.toBe(event);
      if (lang === 'zh-CN') expect(label, event).not.toMatch(/[A-Za-z]/);
    }
    expect(eventChoices(lang).map((c) => c.value)).toContain('admin.grantRole');
  });

  it('show a code they do not know as it is, whatever it is', () => {
    for (const code of ['some.future_event', 'admin.someFutureOperation', 'constructor', '__proto__', 'toString', 'admin.constructor', 'admin.__proto__', '<script>']) {
      expect(eventLabel('zh-CN', code)).toBe(code);
      expect(reasonLabel('zh-CN', code)).toBe(code);
    }
  });

  it('read the reasons the code records', () => {
    expect(['unknown_account', 'wrong_password', 'account_disabled', 'locked', 'mfa_failed'].map((r) => reasonLabel('zh-CN', r))).toEqual(['账号不存在', '密码错误', '账号已停用', '账号已锁定', '两步验证未通过']);
    expect(reasonLabel('zh-CN', 'forbidden: role')).toBe('角色无权执行此操作');
    expect(reasonLabel('zh-CN', 'refused: name: a window with this name exists already')).toBe('已拒绝：name: a window with this name exists already');
    expect(reasonLabel('en', 'per client')).toBe('limit per client');
    expect(reasonLabel('zh-CN', 'code sent by sms')).toBe('短信验证码');
  });
});
