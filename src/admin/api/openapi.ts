import { z } from 'zod';
import { ADMIN_API_PATH, ADMIN_SCOPE } from './token.ts';
import { OPERATIONS, successStatus, type Operation } from './operations.ts';

// The OpenAPI 3.1 description of the admin API, made from the operations table and
// their zod schemas, so it cannot drift from what the API checks.

type JsonSchema = Record<string, unknown> & { properties?: Record<string, JsonSchema>; required?: string[] };

const jsonSchema = (schema: z.ZodType): JsonSchema => {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return rest;
};

const ERROR_SCHEMA = {
  type: 'object',
  required: ['error', 'message'],
  properties: {
    error: { type: 'string', description: 'invalid_request, invalid_token, forbidden, not_found, conflict or server_error' },
    code: { type: 'string', description: 'what is wrong with the input, as a code of the message catalogue (src/problems.ts); with fields' },
    message: { type: 'string', description: 'in English' },
    fields: {
      type: 'array',
      items: {
        type: 'object',
        properties: { field: { type: 'string' }, code: { type: 'string' }, params: { type: 'object', description: 'the values the text names' }, message: { type: 'string' } },
      },
    },
  },
};

function parameters(op: Operation) {
  const out: unknown[] = [];
  for (const [where, schema] of [['path', op.params], ['query', op.query]] as const) {
    if (!schema) continue;
    const s = jsonSchema(schema);
    for (const [name, property] of Object.entries(s.properties ?? {})) {
      out.push({ name, in: where, required: where === 'path' || (s.required ?? []).includes(name), schema: property });
    }
  }
  return out;
}

function requestBody(op: Operation) {
  const schema = op.documentedBody ?? op.body;
  if (!schema) return undefined;
  const s = jsonSchema(schema);
  if (op.params && s.properties) {
    // Values taken from the path are not in the body.
    for (const name of Object.keys(jsonSchema(op.params).properties ?? {})) {
      delete s.properties[name];
      s.required = s.required?.filter((r) => r !== name);
    }
  }
  return { required: !schema.safeParse(undefined).success, content: { 'application/json': { schema: s } } };
}

const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });

export function openApiDocument(issuer: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of OPERATIONS) {
    const body = requestBody(op);
    (paths[op.path] ??= {})[op.method] = {
      operationId: op.id,
      summary: op.summary,
      description: `Roles: ${op.roles.join(', ')}.`,
      'x-roles': op.roles,
      parameters: parameters(op),
      ...(body && { requestBody: body }),
      responses: {
        [String(successStatus(op))]: { description: 'Done', ...(op.method !== 'delete' && { content: { 'application/json': {} } }) },
        '400': errorResponse('The input is wrong: `fields` says which value and why'),
        '401': errorResponse('No valid access token for this API'),
        '403': errorResponse('The caller’s roles do not allow this'),
        '404': errorResponse('Not found (or outside the caller’s windows)'),
        '409': errorResponse('Conflicts with what exists'),
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'sme-passport admin API',
      version: '1',
      description:
        'Windows, their clients, enterprises’ verification, administrators and signing keys. ' +
        `Every call carries an access token this provider issued to the admin console for the audience ${issuer}${ADMIN_API_PATH} with the scope "${ADMIN_SCOPE}", ` +
        'from a sign-in with a second factor. Roles are checked on every call. Bodies are JSON; unknown fields are refused.',
    },
    servers: [{ url: `${issuer}${ADMIN_API_PATH}` }],
    security: [{ bearer: [ADMIN_SCOPE] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An opaque access token from this provider' } },
      schemas: { Error: ERROR_SCHEMA },
    },
    paths,
  };
}
