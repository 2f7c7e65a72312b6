import type { z } from 'zod';

// Domain errors carry what a user needs to fix their input; the CLI, the pages and
// the admin API each render them their own way. Anything else is a bug and
// is logged, never shown.

export type FieldIssue = { field: string; message: string };

// `issues` holds every problem found, for answers that list them all (the API);
// the first one is the error's own field and message.
export class InputError extends Error {
  readonly field: string;
  readonly issues: FieldIssue[];
  constructor(field: string, message: string, issues: FieldIssue[] = [{ field, message }]) {
    super(`${field}: ${message}`);
    this.field = field;
    this.issues = issues;
  }
}

export class NotFoundError extends InputError {}

export class ConflictError extends InputError {}

// The caller is who they say, but may not do this.
export class ForbiddenError extends InputError {}

// Refused for want of a role: `roles` are those that would do, any one of them.
export class RoleRequiredError extends ForbiddenError {
  readonly roles: readonly string[];
  constructor(roles: readonly string[], message = `this needs one of the roles ${roles.join(', ')}`) {
    super('role', message);
    this.roles = roles;
  }
}

// Administrators do not change their own roles or disable their own account.
export class OwnAccountError extends ForbiddenError {}

export function parseInput<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues = result.error.issues.flatMap((i) =>
    i.code === 'unrecognized_keys'
      ? i.keys.map((key) => ({ field: [...i.path, key].join('.'), message: 'is not a known field' }))
      : [{ field: i.path.join('.') || 'input', message: i.message }],
  );
  throw new InputError(issues[0]!.field, issues[0]!.message, issues);
}

// PostgreSQL unique_violation, raised when two writers race past a lookup.
export const isUniqueViolation = (err: unknown): boolean => (err as { code?: string })?.code === '23505';
