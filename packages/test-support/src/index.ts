export * from './tools.js';
export * from './repo-server.js';
