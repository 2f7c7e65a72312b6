import { pino, type DestinationStream, type Logger as Pino } from 'pino';
import type { Logger } from './errors.ts';
import { currentRequest } from './requests.ts';

// Structured JSON logs (one object a line) through pino, behind the small Logger
// interface the rest of the code uses. Nothing that reaches a log line may carry a
// password, a code, a token, a cookie, an Authorization header or a full phone
// number: requests are logged by route template only (no path, query or body), and
// errors only by name, message and stack, scrubbed of anything that looks secret.

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

// Values that look like credentials, in free text such as an error message.
const SCRUBS: Array<[RegExp, string | ((match: string, ...groups: string[]) => string)]> = [
  // Authorization header values.
  [/\b(Bearer|Basic|DPoP)\s+[A-Za-z0-9._~+/=-]+/gi, '$1 [redacted]'],
  // key=value or "key": "value" where the key names a secret.
  [
    /((?:password|passwd|secret|token|code|cookie|authorization|assertion|verifier|otp)[A-Za-z_]*)(["']?\s*[:=]\s*["']?)[^\s"'&,;}]+/gi,
    '$1$2[redacted]',
  ],
  // Long random-looking strings: opaque tokens, secrets, JWTs (letters and digits mixed).
  [/[A-Za-z0-9_-]{20,}(?:\.[A-Za-z0-9_-]+){0,2}/g, (m) => (/\d/.test(m) && /[A-Za-z]/.test(m) ? '[redacted]' : m)],
  // Mainland mobile numbers: keep the first three and last four digits.
  [/(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)/g, '$1****$2'],
  // Six-digit one-time codes.
  [/(?<![\d.:])\d{6}(?![\d:]|\.\d)/g, '[redacted]'],
];

export function scrub(text: string): string {
  let out = text;
  for (const [pattern, replacement] of SCRUBS) out = out.replace(pattern, replacement as string);
  return out;
}

type SafeError = { name: string; message: string; stack?: string; code?: string; status?: number; error?: string; cause?: SafeError; errors?: SafeError[] };

// What an error may put in a log: its name, message and stack (the stack's first line
// is rebuilt from the scrubbed message), plus short machine codes. Never its other
// properties: errors from the provider and the database carry request parameters,
// query bindings and the like.
export function safeError(err: unknown, depth = 0): SafeError {
  if (!(err instanceof Error)) return { name: typeof err, message: scrub(String(err)) };
  const e = err as Error & { code?: unknown; status?: unknown; error?: unknown };
  const name = scrub(e.name);
  const message = scrub(e.message);
  const out: SafeError = { name, message };
  if (typeof e.stack === 'string') {
    const frames = e.stack.split('\n').filter((line) => /^\s+at /.test(line));
    out.stack = [`${name}: ${message}`, ...frames.map(scrub)].join('\n');
  }
  if (typeof e.code === 'string' && /^[A-Za-z0-9_]{1,40}$/.test(e.code)) out.code = e.code;
  if (typeof e.status === 'number') out.status = e.status;
  if (typeof e.error === 'string' && /^[a-z_]{1,40}$/.test(e.error)) out.error = e.error;
  if (depth < 2) {
    if (e.cause !== undefined) out.cause = safeError(e.cause, depth + 1);
    if (err instanceof AggregateError) out.errors = err.errors.slice(0, 5).map((inner) => safeError(inner, depth + 1));
  }
  return out;
}

export type LoggerOptions = {
  level?: LogLevel;
  // Where the lines go; standard output by default. Tests pass a stream to read them.
  destination?: DestinationStream | number;
};

export function createPino(options: LoggerOptions = {}): Pino {
  const destination = options.destination ?? 1;
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'sme-passport' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: (err: unknown) => safeError(err) },
      // Nothing logs headers or bodies; should a field ever carry one, these go.
      redact: {
        paths: [
          'headers.authorization',
          'headers.cookie',
          'headers["set-cookie"]',
          'req.headers.authorization',
          'req.headers.cookie',
          'res.headers["set-cookie"]',
          'password',
          '*.password',
          'token',
          '*.token',
        ],
        censor: '[redacted]',
      },
      // Every line written while a request is handled names its request id.
      mixin: () => {
        const requestId = currentRequest()?.requestId;
        return requestId ? { requestId } : {};
      },
    },
    typeof destination === 'number' ? pino.destination({ fd: destination, sync: true }) : destination,
  );
}

export function loggerOver(log: Pino): Logger {
  return {
    error: (message, err) => (err === undefined ? log.error(message) : log.error({ err }, message)),
    info: (message, fields) => (fields ? log.info(fields, message) : log.info(message)),
  };
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return loggerOver(createPino(options));
}
