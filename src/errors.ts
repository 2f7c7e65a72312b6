import type { z } from 'zod';

// Domain errors carry what a user needs to fix their input; the CLI, the pages and
// (later) the admin API each render them their own way. Anything else is a bug and
// is logged, never shown.

export class InputError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

export class NotFoundError extends InputError {}

export class ConflictError extends InputError {}

export function parseInput<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  throw new InputError(issue.path.join('.') || 'input', issue.message);
}

// PostgreSQL unique_violation, raised when two writers race past a lookup.
export const isUniqueViolation = (err: unknown): boolean => (err as { code?: string })?.code === '23505';
