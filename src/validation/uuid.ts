import { z } from 'zod';

// Made once: building the schema on every call cost more than the check (a hop's profile).
const UUID = z.uuid();

export const isUuid = (value: unknown): value is string => UUID.safeParse(value).success;
