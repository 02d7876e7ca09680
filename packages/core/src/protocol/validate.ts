/**
 * TypeBox validators of the protocol's messages: the server and the relay check every request
 * with them, and they name the first bad field when a value does not fit (DESIGN.md section 8:
 * everything a peer sends is untrusted). Loading TypeBox and the schemas costs about 9 MB of RSS,
 * so peers that only read answers (the agent, the publishing commands) use the compiled checks
 * (answers.ts) and load this module only to explain a misfit.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { FerryError } from '../errors.js';
import { MESSAGES, type MessageName, type Validators } from './messages.js';
import { SCHEMAS } from './table.js';

const compiled = new Map<TSchema, TypeCheck<TSchema>>();

function checker<T extends TSchema>(schema: T): TypeCheck<T> {
  let c = compiled.get(schema);
  if (!c) {
    c = TypeCompiler.Compile(schema);
    compiled.set(schema, c);
  }
  return c as TypeCheck<T>;
}

/** Checks `value` against `schema`; returns it typed or throws FERRY_ERR_PROTOCOL_INVALID. */
export function checkShape<T extends TSchema>(schema: T, value: unknown, what: string): Static<T> {
  const c = checker(schema);
  if (c.Check(value)) return value;
  const first = c.Errors(value).First();
  const where = first?.path ? ` at ${first.path}` : '';
  throw new FerryError('FERRY_ERR_PROTOCOL_INVALID', `${what} does not have the protocol's shape${where}: ${first?.message ?? 'invalid'}`);
}

/** Validators of each message, named after what they check. */
export const protocol = Object.fromEntries(
  (Object.keys(MESSAGES) as MessageName[]).map((name) => [name, (v: unknown) => checkShape(SCHEMAS[name], v, MESSAGES[name])]),
) as unknown as Validators;
