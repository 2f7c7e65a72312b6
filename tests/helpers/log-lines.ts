// The log contract (README, "Logs"): everything a server process writes is one JSON
// object a line, with no SQL text or values and no request path in it.

const SQL = /\bselect\b.+\bfrom\b|\binsert into\b|\bdelete from\b|\bupdate\s+"?\w+"?\s+set\b|\bon conflict\b|\breturning\s+"|\$\d+\b/i;

// Each line that breaks the contract, with why; `paths` are request paths (or the ids
// in them) the test sent, none of which may appear.
export function logContractBreaches(output: string, paths: string[] = []): string[] {
  const breaches: string[] = [];
  for (const line of output.split('\n')) {
    if (line === '') continue;
    const shown = line.length > 300 ? `${line.slice(0, 300)}…` : line;
    try {
      const parsed: unknown = JSON.parse(line);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) breaches.push(`not a JSON object: ${shown}`);
    } catch {
      breaches.push(`not JSON: ${shown}`);
      continue;
    }
    if (SQL.test(line)) breaches.push(`SQL text: ${shown}`);
    const path = paths.find((p) => line.includes(p));
    if (path) breaches.push(`request path ${path}: ${shown}`);
  }
  return breaches;
}
