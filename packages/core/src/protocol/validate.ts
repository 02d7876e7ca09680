/**
 * The protocol's validators (DESIGN.md section 8: everything a peer sends is untrusted). One check
 * decides everywhere: the compiled checks generated from the TypeBox schemas (checks.ts, through
 * fitsMessage). TypeBox itself is used only to name the first bad field of a value that does not
 * fit; loading it and the schemas costs about 9 MB of RSS, so peers that only read answers (the
 * agent, the publishing commands) import this module only when an answer does not fit (answers.ts).
 */
import { Value } from '@sinclair/typebox/value';
import { FerryError } from '../errors.js';
import { fitsMessage } from './answers.js';
import { MESSAGES, type MessageName, type Validators } from './messages.js';
import { SCHEMAS } from './table.js';

/** FERRY_ERR_PROTOCOL_INVALID for a value that does not fit message `name`, naming its first bad field. */
export function misfit(name: MessageName, value: unknown): FerryError {
  const first = Value.Errors(SCHEMAS[name], value).First();
  const where = first?.path ? ` at ${first.path}` : '';
  return new FerryError('FERRY_ERR_PROTOCOL_INVALID', `${MESSAGES[name]} does not have the protocol's shape${where}: ${first?.message ?? 'invalid'}`);
}

/** Validators of each message, named after what they check (the server's and the relay's requests). */
export const protocol = Object.fromEntries(
  (Object.keys(MESSAGES) as MessageName[]).map((name) => [
    name,
    (v: unknown) => {
      if (fitsMessage(name, v)) return v;
      throw misfit(name, v);
    },
  ]),
) as unknown as Validators;
