/** `ferry agents add` and `ferry tokens add`: the admin API (docs/protocol.md section 6). */
import { TOKEN_NAME_RE, messages } from '@ferry/core';
import { randomBytes } from 'node:crypto';
import { requiredOpt, stringOpt, type CommandSpec } from '../command.js';
import { writeJson, writeLines, type Invocation } from '../context.js';
import { EXIT, usage } from '../errors.js';
import { REMOTE_OPTIONS, apiClient } from '../remote.js';

async function addAgent(inv: Invocation): Promise<number> {
  const { ctx, global } = inv;
  const { body } = await apiClient(inv).request({ method: 'POST', path: '/v1/agents', json: { id: inv.positionals[0] }, signal: ctx.signal });
  const a = await messages.createAgentAnswer(body);
  if (global.json) writeJson(ctx, a);
  else writeLines(ctx, [a.token, `agent ${a.id} registered; the token above is shown once (the server keeps only its hash)`]);
  return EXIT.ok;
}

async function addToken(inv: Invocation): Promise<number> {
  const { ctx, global } = inv;
  const role = requiredOpt(inv, 'role', 'publisher|operator');
  if (role !== 'publisher' && role !== 'operator') throw usage(`--role takes publisher or operator, got ${JSON.stringify(role)}`);
  const name = stringOpt(inv, 'name') ?? `${role}-${randomBytes(3).toString('hex')}`;
  if (!TOKEN_NAME_RE.test(name)) throw usage(`--name takes letters, digits, '.', '_' and '-' (up to 63), got ${JSON.stringify(name)}`);
  const { body } = await apiClient(inv).request({ method: 'POST', path: '/v1/tokens', json: { role, name }, signal: ctx.signal });
  const t = await messages.createTokenAnswer(body);
  if (global.json) writeJson(ctx, t);
  else writeLines(ctx, [t.token, `${t.role} token ${t.name} created; the token above is shown once (the server keeps only its hash)`]);
  return EXIT.ok;
}

/** `ferry agents add NAME`. */
export const agentsAddCommand: CommandSpec = {
  name: 'agents add',
  summary: 'Register an agent on a server and print its token (bound to that agent id; shown once).',
  args: 'NAME',
  positionals: { min: 1, max: 1 },
  options: { ...REMOTE_OPTIONS },
  notes: ['Needs the admin token (DIR/admin.token of ferry serve).', 'example:', '  ferry agents add edge-17 --server https://ferry.example:8443 --token "$(cat /var/lib/ferry/admin.token)"'],
  run: addAgent,
};

/** `ferry tokens add --role R`. */
export const tokensAddCommand: CommandSpec = {
  name: 'tokens add',
  summary: 'Create a publisher token (push, release) or an operator token (read-only views) on a server; prints it once.',
  args: '',
  positionals: { min: 0, max: 0 },
  options: {
    role: { type: 'string', arg: 'ROLE', description: 'publisher or operator (required)' },
    name: { type: 'string', arg: 'NAME', description: 'a name to revoke it by (default ROLE-random)' },
    ...REMOTE_OPTIONS,
  },
  notes: ['Needs the admin token (DIR/admin.token of ferry serve).', 'example:', '  ferry tokens add --role publisher --name ci --server https://ferry.example:8443 --token "$(cat admin.token)"'],
  run: addToken,
};
