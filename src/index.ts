/** handlefs library entry: the core, and (as they land) the FUSE layer, store, sources and tree. */
export * from './core/index.js';
export { createLogger, silentLogger, type Logger, type LoggerOptions } from './log.js';
export { LOGGER } from './tokens.js';
