export * from './match.js';
export * from './plan.js';
export * from './emit.js';
export * from './patch-pool.js';
export * from './bundle.js';
