import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXAMPLES } from '../helpers/examples.ts';
import { ROOT } from '../helpers/processes.ts';

// The guide embeds the examples the other tests in this folder run: each fenced block
// after a marker `<!-- example: docs/examples/... -->` must be that file, byte for byte,
// so the guide cannot drift from what runs.

const GUIDE = 'docs/integration.zh-CN.md';
const MARKER = /^<!-- example: (\S+) -->$/;

type Embedded = { line: number; file: string; block: string | undefined };

function embeddedExamples(text: string): Embedded[] {
  const lines = text.split('\n');
  const found: Embedded[] = [];
  for (let i = 0; i < lines.length; i++) {
    const file = MARKER.exec(lines[i]!)?.[1];
    if (!file) continue;
    let open = i + 1;
    while (lines[open]?.trim() === '') open++;
    const fence = /^(`{3,}|~{3,})/.exec(lines[open] ?? '')?.[1];
    const close = fence ? lines.findIndex((l, n) => n > open && l === fence) : -1;
    found.push({ line: i + 1, file, block: close > 0 ? lines.slice(open + 1, close).join('\n') : undefined });
  }
  return found;
}

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

describe('the integration guide', () => {
  const guide = fs.readFileSync(path.join(ROOT, GUIDE), 'utf8');
  const embedded = embeddedExamples(guide);

  it('embeds every example file of docs/examples', () => {
    const files = filesUnder(EXAMPLES).map((f) => path.relative(ROOT, f));
    expect(files.length).toBeGreaterThan(0);
    expect(files.filter((f) => !embedded.some((e) => e.file === f))).toEqual([]);
  });

  it('has each marker point at a file and followed by a fenced block that is the file', () => {
    expect(embedded.length).toBeGreaterThan(0);
    for (const { line, file, block } of embedded) {
      const where = `${GUIDE}:${line} (${file})`;
      expect(fs.existsSync(path.join(ROOT, file)), `${where}: no such file`).toBe(true);
      expect(block, `${where}: no fenced block after the marker`).toBeDefined();
      expect(block, `${where}: the block differs from the file`).toBe(fs.readFileSync(path.join(ROOT, file), 'utf8').replace(/\n$/, ''));
    }
  });

  it('is linked from the README', () => {
    expect(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')).toContain(`](${GUIDE})`);
  });
});

describe('the check itself', () => {
  it('finds a block that differs, a marker without a block and a marker at a missing file', () => {
    const text = ['<!-- example: a.js -->', '', '```js', 'one', 'two', '```', '<!-- example: b.js -->', 'no block', '<!-- example: c.js -->', '````md', '```', 'inner', '```', '````'].join('\n');
    expect(embeddedExamples(text)).toEqual([
      { line: 1, file: 'a.js', block: 'one\ntwo' },
      { line: 7, file: 'b.js', block: undefined },
      { line: 9, file: 'c.js', block: '```\ninner\n```' },
    ]);
  });
});
