/**
 * Command specs and their parsing (node's util.parseArgs, no extra library). Each command file
 * exports CommandSpecs; cli.ts dispatches on the name and prints their help.
 */
import { isAbsolute, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { CliContext, Invocation } from './context.js';
import { usage } from './errors.js';

/** One option of a command. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** May be given several times (values collect in an array). */
  multiple?: boolean;
  /** Placeholder shown in help (`--out DIR`). */
  arg?: string;
  description: string;
}

/** A command: its help and how it runs. */
export interface CommandSpec {
  name: string;
  /** One line for `ferry --help`. */
  summary: string;
  /** Positionals as shown in the usage line (`SOURCE`, `NAME:TAG`). */
  args: string;
  /** Allowed number of positionals. */
  positionals: { min: number; max: number };
  options: Record<string, OptionSpec>;
  /** Extra help paragraphs (examples, notes). */
  notes?: string[];
  /** Runs the command; returns the exit code. */
  run(inv: Invocation): Promise<number>;
}

/** Options every command takes. */
export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  store: { type: 'string', arg: 'DIR', description: 'the store (default $FERRY_STORE, else ./ferry-store)' },
  json: { type: 'boolean', description: 'print a machine-readable result on stdout' },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
};

/** The help text of a command. */
export function commandHelp(spec: CommandSpec): string {
  const line = (name: string, o: OptionSpec): [string, string] => [`${o.short ? `-${o.short}, ` : '    '}--${name}${o.arg ? ` ${o.arg}` : ''}`, o.description];
  const opts = Object.entries(spec.options).map(([n, o]) => line(n, o));
  const globals = Object.entries(GLOBAL_OPTIONS).map(([n, o]) => line(n, o));
  const width = Math.max(...[...opts, ...globals].map(([l]) => l.length));
  const fmt = (rows: [string, string][]): string[] => rows.map(([l, d]) => `  ${l.padEnd(width)}  ${d}`);
  const out = [`usage: ferry ${spec.name}${spec.args ? ` ${spec.args}` : ''} [options]`, '', spec.summary];
  if (spec.notes) out.push('', ...spec.notes);
  if (opts.length > 0) out.push('', 'options:', ...fmt(opts));
  out.push('', 'global options:', ...fmt(globals), '', 'exit codes: see ferry --help');
  return out.join('\n') + '\n';
}

function parseError(err: unknown, spec: CommandSpec): Error {
  const e = err as NodeJS.ErrnoException;
  const quoted = /'([^']+)'/.exec(e.message)?.[1];
  const where = `ferry ${spec.name}`;
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return usage(`unknown option ${quoted ?? ''} for ${where} (see ${where} --help)`);
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') return usage(`${e.message.replace(/\.$/, '')} (see ${where} --help)`);
  return usage(`${e.message} (see ${where} --help)`);
}

/** Parses a command's arguments (global options included) into an Invocation. */
export function parseInvocation(ctx: CliContext, spec: CommandSpec, args: string[]): Invocation {
  const options = Object.fromEntries(
    Object.entries({ ...GLOBAL_OPTIONS, ...spec.options }).map(([n, o]) => [n, { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) }]),
  );
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw parseError(err, spec);
  }
  const { store, json, help: _help, ...values } = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const { min, max } = spec.positionals;
  const n = parsed.positionals.length;
  if (n < min) throw usage(`ferry ${spec.name} needs ${spec.args} (see ferry ${spec.name} --help)`);
  if (n > max) throw usage(`ferry ${spec.name} takes ${max === 0 ? 'no arguments' : spec.args}, got unexpected ${JSON.stringify(parsed.positionals[max])}`);
  const dir = typeof store === 'string' ? store : ctx.storeFromEnv || 'ferry-store';
  const storeGiven = typeof store === 'string' || Boolean(ctx.storeFromEnv);
  return { ctx, command: spec.name, global: { store: isAbsolute(dir) ? dir : resolve(ctx.cwd, dir), storeGiven, json: json === true }, values, positionals: parsed.positionals };
}

/** A string option's value, or undefined. */
export function stringOpt(inv: Invocation, name: string): string | undefined {
  const v = inv.values[name];
  return typeof v === 'string' ? v : undefined;
}

/** The values of a repeatable option (empty when absent). */
export function listOpt(inv: Invocation, name: string): string[] {
  const v = inv.values[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

/** A string option that must be given. */
export function requiredOpt(inv: Invocation, name: string, what: string): string {
  const v = stringOpt(inv, name);
  if (v === undefined || v === '') throw usage(`ferry ${inv.command} needs --${name} ${what} (see ferry ${inv.command} --help)`);
  return v;
}

/** Resolves a user-given path against the working directory. */
export function userPath(inv: Invocation, p: string): string {
  return isAbsolute(p) ? p : resolve(inv.ctx.cwd, p);
}
