/**
 * @ferry/server: repository hosting, publishing, releases, agent check-ins and reports
 * (DESIGN.md section 7, docs/protocol.md). startServer runs one; buildApp and the state API let
 * more routes (the operator's views) plug in.
 */
export * from './options.js';
export * from './context.js';
export * from './http-errors.js';
export * from './auth.js';
export * from './app.js';
export * from './builder.js';
export * from './events.js';
export * from './metrics.js';
export * from './data-dir.js';
export * from './server.js';
export * from './state/db.js';
export * from './state/schema.js';
export * from './state/state.js';
export * from './state/tokens.js';
export * from './state/agents.js';
export * from './state/releases.js';
export * from './state/bundles.js';
export * from './state/changes.js';
export * from './state/images.js';
export { repositoryUrl } from './routes/agent.js';
export { serveRepoObject, type RepoParams } from './routes/repo.js';
export * from './state/views.js';
