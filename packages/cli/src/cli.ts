/**
 * The `ferry` command line: finds the command, parses its options, runs it and turns failures
 * into exit codes (errors.ts). Global options may come before or after the command name.
 */
import { commandHelp, parseInvocation, type CommandSpec } from './command.js';
import { commandWordIndex } from './command-word.js';
import type { CliContext } from './context.js';
import { EXIT, EXIT_HELP, reportError, usage } from './errors.js';
import { exportCommand } from './commands/export.js';
import { imagesCommand, rmCommand } from './commands/images.js';
import { importCommand } from './commands/import.js';
import { inspectCommand } from './commands/inspect.js';
import { fsckCommand, gcCommand } from './commands/maintenance.js';
import { keygenCommand } from './commands/keygen.js';
import { bundleCommand } from './commands/bundle.js';
import { bundleInspectCommand } from './commands/bundle-inspect.js';
import { applyCommand } from './commands/apply.js';
import { offlineDemoCommand } from './commands/demo.js';
import { demoCommand } from './commands/demo-live.js';
import { linksimCommand } from './commands/linksim.js';
import { serveCommand } from './commands/serve.js';
import { relayCommand } from './commands/relay.js';
import { pushCommand } from './commands/push.js';
import { releaseCommand } from './commands/release.js';
import { agentsAddCommand, tokensAddCommand } from './commands/admin.js';
import { statusCommand } from './commands/status.js';
import { agentCommand } from './commands/agent.js';

/** Every command, in the order `ferry --help` lists them. */
export const COMMANDS: CommandSpec[] = [
  importCommand,
  imagesCommand,
  exportCommand,
  inspectCommand,
  rmCommand,
  fsckCommand,
  gcCommand,
  keygenCommand,
  bundleCommand,
  bundleInspectCommand,
  applyCommand,
  linksimCommand,
  serveCommand,
  relayCommand,
  pushCommand,
  releaseCommand,
  agentsAddCommand,
  tokensAddCommand,
  statusCommand,
  agentCommand,
  demoCommand,
  offlineDemoCommand,
];

/**
 * A command summary's first clause, for the command list: up to the first '.', ';' or ':' that
 * ends a word outside parentheses (a cut inside one left "(bound to that agent id" unclosed).
 */
function firstClause(s: string): string {
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '(') depth++;
    else if (c === ')') depth = Math.max(0, depth - 1);
    else if (depth === 0 && (c === '.' || c === ';' || c === ':') && (i === s.length - 1 || s[i + 1] === ' ')) return s.slice(0, i);
  }
  return s;
}

/** The text of `ferry --help`. */
export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'usage: ferry COMMAND [options]',
    '',
    'ferry keeps container images in a deduplicated store and moves their updates to edge devices.',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${firstClause(c.summary)}`),
    '',
    'global options (every command):',
    '  --store DIR  the store (default $FERRY_STORE, else ./ferry-store)',
    '  --json       print a machine-readable result on stdout',
    '  -h, --help   show help (ferry COMMAND --help for a command)',
    '  --version    print the version',
    '',
    'exit codes:',
    ...EXIT_HELP.map(([code, text]) => `  ${code}  ${text}`),
    '',
    'Errors print one line: ferry: error FERRY_ERR_<CODE>: message. Set FERRY_DEBUG=1 for stack traces of internal errors.',
  ].join('\n') + '\n';
}

/**
 * Splits argv into the command name and the rest (global options may precede the name). A
 * subcommand (`bundle inspect`) is the word right after its group's name.
 */
function splitCommand(argv: string[]): { name: string | undefined; rest: string[] } {
  const i = commandWordIndex(argv);
  if (i === undefined) return { name: undefined, rest: argv };
  const sub = `${argv[i]} ${argv[i + 1] ?? ''}`;
  if (COMMANDS.some((c) => c.name === sub)) return { name: sub, rest: [...argv.slice(0, i), ...argv.slice(i + 2)] };
  return { name: argv[i], rest: [...argv.slice(0, i), ...argv.slice(i + 1)] };
}

const wantsHelp = (args: string[]): boolean => args.some((a) => a === '--help' || a === '-h');

function noCommand(ctx: CliContext, rest: string[]): number {
  if (rest.includes('--version')) {
    ctx.stdout.write(`ferry ${ctx.version}\n`);
    return EXIT.ok;
  }
  if (wantsHelp(rest)) {
    ctx.stdout.write(mainHelp());
    return EXIT.ok;
  }
  const unknown = rest.find((a) => a.startsWith('-') && !['--json', '--store'].includes(a) && !a.startsWith('--store='));
  throw usage(unknown ? `unknown option ${unknown} (see ferry --help)` : 'no command given (see ferry --help)');
}

/** Runs `ferry` with `argv` (without node and the script); returns the exit code. */
export async function runCli(argv: string[], ctx: CliContext): Promise<number> {
  const json = argv.includes('--json');
  let global: { json: boolean; stdoutTaken?: boolean } = { json };
  try {
    const { name, rest } = splitCommand(argv);
    if (name === undefined) return noCommand(ctx, rest);
    const spec = COMMANDS.find((c) => c.name === name);
    if (!spec) throw usage(`unknown command ${JSON.stringify(name)} (commands: ${COMMANDS.map((c) => c.name).join(', ')}; see ferry --help)`);
    if (wantsHelp(rest)) {
      ctx.stdout.write(commandHelp(spec));
      return EXIT.ok;
    }
    const inv = parseInvocation(ctx, spec, rest);
    global = inv.global;
    return await spec.run(inv);
  } catch (err) {
    // when stdout carries data (an archive), the error stays on stderr only
    return reportError(ctx, err, global.json && !global.stdoutTaken);
  }
}
