/**
 * The tools each corpus of the skeleton tests is generated with. They are looked up through
 * @ferry/test-support: on a machine without one, the tests of the corpora that need it are skipped
 * with one line naming the tool and its apt package; with FERRY_REQUIRE_TOOLS=1 (CI) that is a
 * failure instead.
 */
import type { ToolName } from '@ferry/test-support';

/** Tools per corpus (the GNU and umoci corpora build a tree with special files and xattrs). */
export const CORPUS_TOOLS = {
  gnu: ['tar', 'setfattr', 'mknod', 'mkfifo'],
  python: ['python3'],
  umoci: ['umoci', 'setfattr', 'mknod', 'mkfifo'],
} as const satisfies Record<string, readonly ToolName[]>;
