import crypto from 'node:crypto';
import fs from 'node:fs';

// The operator's logo (LOGO_FILE), read and checked once at start and then served from
// memory under a name that carries its digest, so browsers may keep it for a year: a
// new logo is a new name.

export type Logo = { href: string; type: 'image/png' | 'image/jpeg' | 'image/svg+xml'; body: Buffer };

export const LOGO_MAX_BYTES = 200 * 1024;

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const JPEG = Buffer.from([0xff, 0xd8, 0xff]);
// An SVG document: optional XML declaration, comments and doctype, then the <svg> element.
const SVG = /^\uFEFF?\s*(<\?xml[^>]*\?>\s*)?(<!--[\s\S]*?-->\s*|<!DOCTYPE[^>]*>\s*)*<svg[\s>]/;

function typeOf(body: Buffer): Logo['type'] | undefined {
  if (body.subarray(0, PNG.length).equals(PNG)) return 'image/png';
  if (body.subarray(0, JPEG.length).equals(JPEG)) return 'image/jpeg';
  try {
    if (SVG.test(new TextDecoder('utf-8', { fatal: true }).decode(body))) return 'image/svg+xml';
  } catch {
    return undefined;
  }
  return undefined;
}

const EXTENSIONS = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/svg+xml': 'svg' } as const;

// The logo, or what is wrong with the file, said for the operator.
export function readLogo(file: string): Logo | string {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `no such file: ${file}` : `cannot be read (${code}): ${file}`;
  }
  if (!stat.isFile()) return `must be a file, and ${file} is ${stat.isDirectory() ? 'a directory' : 'not a regular file'}`;
  if (stat.size > LOGO_MAX_BYTES) return `must be at most ${LOGO_MAX_BYTES / 1024} KB, and ${file} is ${Math.ceil(stat.size / 1024)} KB`;
  let body: Buffer;
  try {
    body = fs.readFileSync(file);
  } catch (err) {
    return `cannot be read (${(err as NodeJS.ErrnoException).code}): ${file}`;
  }
  const type = typeOf(body);
  if (!type) return `must be a PNG, JPEG or SVG image, and ${file} is none of these`;
  const digest = crypto.createHash('sha256').update(body).digest('hex').slice(0, 16);
  return { href: `/assets/logo-${digest}.${EXTENSIONS[type]}`, type, body };
}
