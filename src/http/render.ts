import { fileURLToPath } from 'node:url';
import type { Context } from 'koa';
import { Eta } from 'eta';
import { langOf, translator } from './i18n.ts';
import { presentationOf, timeFormatter } from './presentation.ts';
import { describeIssue } from '../problems.ts';

// Every page goes through here: the engine escapes every <%= %> by default.
const eta = new Eta({
  views: fileURLToPath(new URL('../../views', import.meta.url)),
  autoEscape: true,
  cache: true,
});

// Links that switch language keep the current page and query. Only the query is
// written: a link built from the request path (`//evil.example/x`, `/\evil.example`)
// would lead to another site. A page that answers a POST has a path that takes only
// posts: its link leads to the GET page of the same flow that its route named with
// flowPage() (a path of ours, never the request's), or home when none was named.
const FLOW_PAGE = 'flowPage';

export function flowPage(ctx: Context, path: string): void {
  ctx.state[FLOW_PAGE] = path;
}

function langSwitchHref(ctx: Context, lang: string): string {
  if (ctx.method === 'GET' || ctx.method === 'HEAD') {
    const params = new URLSearchParams(ctx.querystring);
    params.set('lang', lang);
    return `?${params}`;
  }
  const page = new URL(typeof ctx.state[FLOW_PAGE] === 'string' ? ctx.state[FLOW_PAGE] : '/', 'http://flow.invalid');
  page.searchParams.set('lang', lang);
  return `${page.pathname}${page.search}`;
}

export function render(ctx: Context, view: string, data: Record<string, unknown> = {}, status = 200): void {
  const lang = langOf(ctx);
  const presentation = presentationOf(ctx);
  ctx.status = status;
  ctx.type = 'html';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = eta.render(view, {
    ...data,
    lang,
    t: translator(lang),
    presentation,
    // Times as people read them: the operator's zone, named (see ./presentation.ts).
    time: timeFormatter(lang, presentation.timeZone),
    timeWithSeconds: timeFormatter(lang, presentation.timeZone, true),
    switchHref: langSwitchHref(ctx, lang === 'en' ? 'zh-CN' : 'en'),
    // A field's problem (an InputError's issue) in the page's language.
    problem: (issue: Parameters<typeof describeIssue>[0]) => describeIssue(issue, lang),
  });
}
