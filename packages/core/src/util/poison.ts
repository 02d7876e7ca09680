/**
 * A debug aid for tests (test/setup-poison.ts turns it on for every suite). The payload reader
 * hands bytes on as views of buffers it reuses (zstdDecode's output piece with `reuseOutput`,
 * msgpackDocuments' buffer that assembles a record spanning pieces): a view is valid until the
 * next pull, and a consumer copies what it keeps. With poisoning on, each such buffer is
 * overwritten with {@link POISON_BYTE} as soon as the next pull begins, so a consumer that kept a
 * view reads garbage at once, every time, rather than only where later bytes happen to land.
 */

/** What a consumed view reads once poisoned. */
export const POISON_BYTE = 0xdb;

/**
 * The switch is one per process, not per module instance: a test process may load core twice
 * (its sources for core's own tests, its dist through `@ferry/core`), and one call sets both.
 */
const SWITCH = Symbol.for('ferry.poisonReusedOutput');
const state = globalThis as { [SWITCH]?: boolean };

/** Turns poisoning of consumed views on or off (off by default; tests turn it on). */
export function poisonReusedOutput(on: boolean): void {
  state[SWITCH] = on;
}

/** Called by a reusing producer when the consumer asks for more: poisons the view it handed out. */
export function poisonConsumed(view: Uint8Array): void {
  if (state[SWITCH] === true) view.fill(POISON_BYTE);
}
