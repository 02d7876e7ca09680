/**
 * The file URL of a compiled sibling module (a worker script), also when the caller runs from its
 * TypeScript sources (vitest): `.../src/x/pool.ts` finds `.../dist/x/<name>.js`.
 */
export function compiledSibling(metaUrl: string, name: string): URL {
  const base = metaUrl.endsWith('.ts') ? metaUrl.replace(/\/src\/(?!.*\/src\/)/, '/dist/') : metaUrl;
  return new URL(`./${name}.js`, base);
}
