import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

// The hash chain that makes the audit trail tamper-evident. Each record carries the
// hash of the record before it (`prev_hash`) and its own:
//
//   hash = hex(SHA-256(prev_hash + "\n" + JCS(fields)))
//
// where JCS is the JSON Canonicalization Scheme (RFC 8785: keys sorted at every level,
// numbers and strings as ECMAScript writes them) and `fields` is the object of the
// record's columns below, null for an empty one, `at` as an ISO 8601 string in UTC with
// milliseconds. The first record follows GENESIS, or the hash of the last record a purge
// removed (its anchor). This definition is frozen: records already written are verified
// with it, and anyone can check an export with a few lines in any language.

export const GENESIS = '0'.repeat(64);

export const CHAINED_COLUMNS = ['at', 'actor_type', 'actor_id', 'actor_ip', 'enterprise_id', 'window_id', 'event', 'target', 'outcome', 'reason', 'before', 'after'] as const;

export type ChainedFields = {
  at: string;
  actor_type: string;
  actor_id: string | null;
  actor_ip: string | null;
  enterprise_id: string | null;
  window_id: number | null;
  event: string;
  target: string | null;
  outcome: string;
  reason: string | null;
  before: unknown;
  after: unknown;
};

// JCS(fields): the text that is hashed. The database hashes it too (audit_append), so
// it travels to the database as the exact text hashed here.
export const chainedText = (fields: ChainedFields): string => canonicalize(fields)!;

export function chainHash(prevHash: string, fields: ChainedFields): string {
  return hashOnto(prevHash, chainedText(fields));
}

export const hashOnto = (prevHash: string, text: string): string => createHash('sha256').update(prevHash).update('\n').update(text).digest('hex');

// The fields of a row as the database returns it.
export function chainedFields(row: Record<string, unknown>): ChainedFields {
  return {
    at: new Date(row.at as Date | string).toISOString(),
    actor_type: row.actor_type as string,
    actor_id: (row.actor_id as string | null) ?? null,
    actor_ip: (row.actor_ip as string | null) ?? null,
    enterprise_id: (row.enterprise_id as string | null) ?? null,
    window_id: row.window_id === null || row.window_id === undefined ? null : Number(row.window_id),
    event: row.event as string,
    target: (row.target as string | null) ?? null,
    outcome: row.outcome as string,
    reason: (row.reason as string | null) ?? null,
    before: row.before ?? null,
    after: row.after ?? null,
  };
}

// What is hashed must be exactly what the database gives back, so values are put in
// that form before both: text without lone surrogates (UTF-8 cannot carry them) or NUL
// (PostgreSQL text cannot), JSON values as JSON.parse(JSON.stringify(...)) reads them.
export const storableText = (s: string): string => s.toWellFormed().replaceAll('\0', '\uFFFD');

export function storableJson(value: unknown): unknown {
  if (value === undefined) return null;
  const text = JSON.stringify(value);
  return text === undefined ? null : clean(JSON.parse(text));
}

function clean(value: unknown): unknown {
  if (typeof value === 'string') return storableText(value);
  if (Array.isArray(value)) return value.map(clean);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [storableText(k), clean(v)]));
  return value;
}

// PostgreSQL prints a uuid in lower case with hyphens, whatever form it was given in.
export function storableUuid(value: string): string {
  const hex = value.replace(/[{}-]/g, '').toLowerCase();
  return /^[0-9a-f]{32}$/.test(hex) ? `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}` : value;
}
