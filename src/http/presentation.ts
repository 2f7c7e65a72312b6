import type { Context } from 'koa';
import type { Lang } from './i18n.ts';
import type { Logo } from './logo.ts';

// What an operator sets about how pages look and read: the time zone people read times
// in, and the platform's branding. Every page receives it through render().
export type Presentation = {
  // IANA zone (TIME_ZONE); the province reads Beijing time.
  timeZone: string;
  branding: Branding;
};

// What every page's header and footer say, as Chinese government sites do: the platform,
// its organiser (主办单位), its filings (ICP 备案号, 公安备案号) and its service phone.
// Unset filings are not shown: a demo has none.
export type Branding = {
  platformName: Record<Lang, string>;
  organiser: Record<Lang, string>;
  icpBeian: Link | undefined;
  publicSecurityBeian: Link | undefined;
  servicePhone: Link | undefined;
  logo: Logo | undefined;
};

export type Link = { text: string; href: string };

// The seed's naming (DOMAIN.md): the network's name, and the department that issued the
// guide as its organiser.
export const DEFAULT_BRANDING: Branding = {
  platformName: { 'zh-CN': '河南省中小企业公共服务平台网络', en: 'Henan SME Public Service Platform Network' },
  organiser: { 'zh-CN': '河南省工业和信息化厅', en: 'Department of Industry and Information Technology of Henan Province' },
  icpBeian: undefined,
  publicSecurityBeian: undefined,
  servicePhone: undefined,
  logo: undefined,
};

export const DEFAULT_PRESENTATION: Presentation = { timeZone: 'Asia/Shanghai', branding: DEFAULT_BRANDING };

// 豫ICP备12345678号-1: every ICP filing links to the MIIT register.
export const icpBeianLink = (beian: string): Link => ({ text: beian, href: 'https://beian.miit.gov.cn/' });

// 豫公网安备41010502000001号: the MPS register's page for it, found by its 14 digits.
export const publicSecurityBeianLink = (beian: string): Link => ({ text: beian, href: `https://beian.mps.gov.cn/#/query/webSearch?code=${beian.replace(/\D/g, '')}` });

// tel: takes digits and a leading +, not the spaces and hyphens people write.
export const servicePhoneLink = (phone: string): Link => ({ text: phone, href: `tel:${phone.replace(/[^\d+]/g, '')}` });

// True when the runtime knows the zone (TIME_ZONE is checked with it at start).
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

const ZONE_NAMES: Record<Lang, Record<string, string>> = {
  'zh-CN': { 'Asia/Shanghai': '北京时间', UTC: 'UTC' },
  en: { 'Asia/Shanghai': 'Beijing time', UTC: 'UTC' },
};

type TimeFormat = (at: Date | string | number) => string;

// Made once per language, zone and precision: every page is given one, and making an
// Intl.DateTimeFormat costs more than rendering the sign-in page.
const formats = new Map<string, TimeFormat>();

// "2026-11-30 23:31 北京时间": digits in the zone, and the zone named, so nobody has to
// guess whether a time is UTC. A zone without a name of ours shows its offset (UTC+8).
export function timeFormatter(lang: Lang, timeZone: string, withSeconds = false): TimeFormat {
  const key = `${lang} ${timeZone} ${withSeconds}`;
  let format = formats.get(key);
  if (!format) formats.set(key, (format = makeTimeFormat(lang, timeZone, withSeconds)));
  return format;
}

function makeTimeFormat(lang: Lang, timeZone: string, withSeconds: boolean): TimeFormat {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    ...(withSeconds ? { second: '2-digit' as const } : {}),
    timeZoneName: 'shortOffset',
  });
  return (at) => {
    const p = Object.fromEntries(parts.formatToParts(new Date(at)).map((x) => [x.type, x.value]));
    const zone = ZONE_NAMES[lang][timeZone] ?? (p.timeZoneName === 'GMT' ? 'UTC' : String(p.timeZoneName).replace('GMT', 'UTC'));
    return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}${withSeconds ? `:${p.second}` : ''} ${zone}`;
  };
}

// The app's presentation, set once per app on its context (apps in one process may differ).
export const presentationOf = (ctx: Context): Presentation => (ctx as Context & { presentation?: Presentation }).presentation ?? DEFAULT_PRESENTATION;
