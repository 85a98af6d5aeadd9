/**
 * handlefs library entry: what a program that embeds the service needs. The layers' internals
 * (core, fuse, sources, store, tree) are not part of the public surface; for tests without root
 * or FUSE, use `handlefs/testing` (also reachable here as `testing`).
 */
export { runService, type ServiceOptions, type StopReport } from './service/service.js';
export { ServiceRefusal, type RefusalReason } from './service/refusal.js';
export { formatStatus, type ServiceStatus, type KindCounts, type HeldNamespaceStatus } from './service/status.js';
export { createLogger, silentLogger, type Logger, type LoggerOptions } from './log.js';
export type { HandleTreeOptions } from './tree/handle-fs.js';
export type { HandleObject } from './tree/context.js';
export { PID_DIR, NS_DIR, BY_INO_DIR, ROOT_DIR, nsTypeDir } from './tree/layout.js';
export { NS_TYPES, type NsType, type ProcessInfo, type NamespaceInfo, type ProcessEnding } from './sources/types.js';
export * as testing from './testing/index.js';
