/** The network protocol (docs/protocol.md): shapes, validators and shared constants. */
export * from './constants.js';
export * from './schemas.js';
export * from './operator.js';
export * from './validate.js';
export * from './client.js';
