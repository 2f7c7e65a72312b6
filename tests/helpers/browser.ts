import makeFetchCookie from 'fetch-cookie';
import { CookieJar } from 'tough-cookie';

// A person's browser for HTTP-level end-to-end tests: a cookie jar, redirects followed
// one by one, and forms submitted with their hidden fields, the way a browser would.

export type Visit =
  | { kind: 'redirect'; to: URL } // stopped at a URL of the relying party
  | { kind: 'page'; url: URL; status: number; html: string };

const decode = (s: string) => s.replace(/&#x2F;/g, '/').replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

export function formOf(html: string, actionPart: string): { action: string; fields: Record<string, string> } {
  for (const match of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)) {
    const action = decode(/action="([^"]*)"/.exec(match[1]!)?.[1] ?? '');
    if (!action.includes(actionPart)) continue;
    const fields: Record<string, string> = {};
    for (const input of match[2]!.matchAll(/<input\b([^>]*)>/g)) {
      const name = /name="([^"]*)"/.exec(input[1]!)?.[1];
      const value = /value="([^"]*)"/.exec(input[1]!)?.[1];
      if (name && /type="hidden"/.test(input[1]!)) fields[name] = decode(value ?? '');
    }
    return { action, fields };
  }
  throw new Error(`no form with action containing "${actionPart}" in page:\n${html.slice(0, 2000)}`);
}

// `fetchImpl`: what sends its requests (one that counts them, for a load).
export function browser(fetchImpl: typeof fetch = fetch) {
  const jar = new CookieJar();
  const fetchWithCookies = makeFetchCookie(fetchImpl, jar);

  async function follow(response: Response, from: URL, stopAt: string): Promise<Visit> {
    let res = response;
    let url = from;
    for (let hops = 0; hops < 20; hops++) {
      if (res.status >= 300 && res.status < 400) {
        const to = new URL(res.headers.get('location')!, url);
        await res.body?.cancel();
        if (to.href.startsWith(stopAt)) return { kind: 'redirect', to };
        url = to;
        res = await fetchWithCookies(url, { redirect: 'manual' });
        continue;
      }
      return { kind: 'page', url, status: res.status, html: await res.text() };
    }
    throw new Error('too many redirects');
  }

  return {
    jar,
    fetch: fetchWithCookies,
    async visit(url: URL | string, stopAt = '\0'): Promise<Visit> {
      const target = new URL(url);
      return follow(await fetchWithCookies(target, { redirect: 'manual' }), target, stopAt);
    },
    // Submits the form whose action contains actionPart, with its hidden fields and these.
    async submit(page: Visit, actionPart: string, fields: Record<string, string> = {}, stopAt = '\0'): Promise<Visit> {
      if (page.kind !== 'page') throw new Error(`expected a page, got a redirect to ${page.to.href}`);
      const form = formOf(page.html, actionPart);
      const target = new URL(form.action, page.url);
      const res = await fetchWithCookies(target, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ ...form.fields, ...fields }),
      });
      return follow(res, target, stopAt);
    },
  };
}

export type Browser = ReturnType<typeof browser>;
