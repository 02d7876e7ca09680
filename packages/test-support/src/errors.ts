/**
 * The error code a failure carries, for tests that assert exactly one code (STYLE.md "Errors").
 * Ferry errors are recognised by their `FERRY_ERR_` code, not by class: a test may see errors
 * from core's sources and from its build. Anything else comes back as a string that names it, so
 * a failed assertion says what happened instead.
 */

function describeError(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof Error && typeof code === 'string' && code.startsWith('FERRY_ERR_')) return code;
  return `not a ferry error: ${String(err)}`;
}

/** The code `f` throws; `'no error'` when it returns. */
export function errorCode(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    return describeError(err);
  }
  return 'no error';
}

/** The code `p` rejects with; `'no error'` when it resolves. */
export async function rejectionCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return describeError(err);
  }
  return 'no error';
}
