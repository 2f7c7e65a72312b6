import type { z } from 'zod';
import { englishText, isProblemCode, PROBLEMS, type Params, type ParamsOf, type Problem, type ProblemCode } from './problems.ts';

// Domain errors carry what a user needs to fix their input, as a code with parameters
// (src/problems.ts); the CLI, the pages and the admin API each render them their own
// way. Anything else is a bug and is logged, never shown.

// `message` is the English text, for the CLI, the logs and the admin API.
export type FieldIssue = Problem & { field: string; message: string };

export const fieldIssue = (field: string, p: Problem): FieldIssue => ({ field, code: p.code, params: p.params, message: englishText(p) });

type ParamArgs<C extends ProblemCode> = keyof ParamsOf<C> extends never ? [params?: Params] : [params: ParamsOf<C>];

// `issues` holds every problem found, for answers that list them all (the API);
// the first one is the error's own field, code and message.
export class InputError<C extends ProblemCode = ProblemCode> extends Error {
  readonly field: string;
  readonly code: ProblemCode;
  readonly params: Params;
  readonly issues: FieldIssue[];
  constructor(field: string, code: C, ...[params = {}]: ParamArgs<C>) {
    const issue = fieldIssue(field, { code, params });
    super(`${field}: ${issue.message}`);
    this.field = field;
    this.code = code;
    this.params = params;
    this.issues = [issue];
  }

  static of(issues: FieldIssue[]): InputError {
    const [first] = issues as [FieldIssue];
    const err = new InputError(first.field, first.code, first.params as never);
    err.issues.splice(0, 1, ...issues);
    return err;
  }
}

export class NotFoundError<C extends ProblemCode = ProblemCode> extends InputError<C> {}

export class ConflictError<C extends ProblemCode = ProblemCode> extends InputError<C> {}

// The caller is who they say, but may not do this.
export class ForbiddenError<C extends ProblemCode = ProblemCode> extends InputError<C> {}

const number = (value: number | bigint) => Number(value);

// What zod says by itself, as a problem of the catalogue: no zod text reaches a person.
function ownProblem(issue: z.core.$ZodIssue): Problem {
  switch (issue.code) {
    case 'invalid_type':
      if ('input' in issue && issue.input === undefined) return { code: 'required', params: {} };
      return { code: issue.expected === 'int' ? 'whole_number' : 'wrong_type', params: {} };
    case 'too_small': {
      const minimum = number(issue.minimum);
      if (issue.origin === 'string') return { code: 'too_short', params: { minimum } };
      if (issue.origin === 'array' || issue.origin === 'set') return { code: 'too_few', params: { minimum } };
      return { code: issue.inclusive === false ? 'not_above' : 'too_small', params: { minimum } };
    }
    case 'too_big': {
      const maximum = number(issue.maximum);
      if (issue.origin === 'string') return { code: 'too_long', params: { maximum } };
      if (issue.origin === 'array' || issue.origin === 'set') return { code: 'too_many', params: { maximum } };
      return { code: 'too_big', params: { maximum } };
    }
    case 'invalid_value':
      return { code: 'one_of', params: { values: issue.values.map(String).join(', ') } };
    default:
      return { code: 'invalid', params: {} };
  }
}

// The parameters a schema's own code shows, taken from the issue.
function issueParams(code: ProblemCode, issue: z.core.$ZodIssue): Params {
  const shown = new Set([...PROBLEMS[code].en.matchAll(/\{(\w+)\}/g)].map((m) => m[1]));
  return Object.fromEntries(Object.entries(allParams(issue)).filter(([name]) => shown.has(name)));
}

function allParams(issue: z.core.$ZodIssue): Params {
  switch (issue.code) {
    case 'too_small':
      return { minimum: number(issue.minimum) };
    case 'too_big':
      return { maximum: number(issue.maximum) };
    case 'invalid_value':
      return { values: issue.values.map(String).join(', ') };
    case 'custom':
      return (issue.params ?? {}) as Params;
    default:
      return {};
  }
}

// A zod issue in English: a catalogue problem's text, or the schema's own words (the
// configuration's, which only operators read).
export const englishOfIssue = (i: z.core.$ZodIssue): string =>
  isProblemCode(i.message) ? englishText({ code: i.message, params: issueParams(i.message, i) }) : i.message;

// Every problem zod found, one per field (an unknown member each), as catalogue codes.
export function issuesOf(error: z.ZodError): FieldIssue[] {
  return error.issues.flatMap((i) => {
    if (i.code === 'unrecognized_keys') return i.keys.map((key) => fieldIssue([...i.path, key].join('.'), { code: 'unknown_field', params: {} }));
    const field = i.path.join('.') || 'input';
    return [fieldIssue(field, isProblemCode(i.message) ? { code: i.message, params: issueParams(i.message, i) } : ownProblem(i))];
  });
}

// reportInput: the issues hold the value, so a missing one reads "is required" and a
// wrong one "has the wrong type"; only the code and parameters leave here, never it.

// Refused for want of a role: `roles` are those that would do, any one of them.
export class RoleRequiredError extends ForbiddenError {
  readonly roles: readonly string[];
  constructor(roles: readonly string[], problem: Problem = { code: 'needs_roles', params: { roles: roles.join(', ') } }) {
    super('role', problem.code, problem.params as never);
    this.roles = roles;
  }
}

// Administrators do not change their own roles or disable their own account.
export class OwnAccountError<C extends ProblemCode = ProblemCode> extends ForbiddenError<C> {}

export function parseInput<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const result = schema.safeParse(input, { reportInput: true });
  if (result.success) return result.data;
  throw InputError.of(issuesOf(result.error));
}

// PostgreSQL unique_violation, raised when two writers race past a lookup.
export const isUniqueViolation = (err: unknown): boolean => (err as { code?: string })?.code === '23505';
