import type { Context } from 'koa';
import type { Lang } from './i18n.ts';

// What an operator sets about how pages look and read: the time zone people read times
// in, and the platform's branding. Every page receives it through render().
export type Presentation = {
  // IANA zone (TIME_ZONE); the province reads Beijing time.
  timeZone: string;
};

export const DEFAULT_PRESENTATION: Presentation = { timeZone: 'Asia/Shanghai' };

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

// "2026-11-30 23:31 北京时间": digits in the zone, and the zone named, so nobody has to
// guess whether a time is UTC. A zone without a name of ours shows its offset (UTC+8).
export function timeFormatter(lang: Lang, timeZone: string, withSeconds = false): (at: Date | string | number) => string {
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
