export * from './tools.js';
export * from './repo-server.js';
export * from './chunk-repo.js';
export * from './postgres.js';
export * from './nginx.js';
