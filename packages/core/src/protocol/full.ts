/** `@ferry/core/protocol`: the protocol's TypeBox schemas and validators (loads TypeBox). */
export * from './schemas.js';
export * from './operator.js';
export * from './table.js';
export * from './validate.js';
export * from './codegen.js';
