/**
 * @ferry/relay: a pull-through cache for a site (docs/protocol.md section 7). Agents point at it as
 * at the server; chunks and headers cross the upstream link once; check-ins and reports pass
 * through, and reports are buffered while upstream is down.
 */
export * from './options.js';
export * from './relay.js';
export { RelayCache, type RelayCacheStats, type ObjectKind } from './objects.js';
export { ReportQueue, type QueuedRequest, type SendResult } from './queue.js';
