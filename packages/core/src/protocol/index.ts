/**
 * The network protocol (docs/protocol.md) without TypeBox: constants, the JSON client, the
 * messages' types and their compiled checks. The schemas and the TypeBox validators the server
 * uses are `@ferry/core/protocol` (full.ts).
 */
export * from './constants.js';
export * from './messages.js';
export * from './answers.js';
export * from './client.js';
export type * from './schemas.js';
export type * from './operator.js';
