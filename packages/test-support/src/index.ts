export * from './tools.js';
export * from './postgres.js';
