/**
 * handlefs library entry: every layer, for programs that embed the service or build on a layer.
 * For in-process tests without root or FUSE, use `handlefs/testing`.
 */
export * from './core/index.js';
export * as fuse from './fuse/index.js';
export * as sources from './sources/index.js';
export * as tree from './tree/index.js';
export { createLogger, silentLogger, type Logger, type LoggerOptions } from './log.js';
export { LOGGER } from './tokens.js';
export { assembleContainer, type AssembleOptions } from './service/container.js';
export { runService, type ServiceOptions, type StopReport } from './service/service.js';
export { collectStatus, formatStatus, type ServiceStatus } from './service/status.js';
