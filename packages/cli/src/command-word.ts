/**
 * Where the command's name is in argv: the first word that is neither an option nor the value of
 * `--store` (global options may precede the name). Its own module so that main.ts can read the
 * command before it loads anything else.
 */
export function commandWordIndex(argv: readonly string[]): number | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return undefined;
    if (a === '--store') i++;
    else if (!a.startsWith('-')) return i;
  }
  return undefined;
}
