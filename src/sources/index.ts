export * from './types.js';
export { SOURCES } from './tokens.js';
export { createSourcesModule, type SourcesModuleOptions } from './module.js';
export { ProcProcessSource, type ProcProcessSourceOptions } from './proc-process-source.js';
export {
  ProcNamespaceSource,
  ProcNamespaceHandle,
  mapLimit,
  type ProcNamespaceSourceOptions,
} from './proc-namespace-source.js';
export { ExitWatcher, readStat, type ExitWatcherOptions } from './exit-watcher.js';
export { readHostIds, DEFAULT_HOST_ID_PATHS, type HostIdPaths } from './host-ids.js';
export {
  loadNative,
  tryLoadNative,
  NativeHelperMissingError,
  NATIVE_MISSING_MESSAGE,
  type NativeHelper,
  type FdWatch,
} from './native.js';
export * as parse from './parse.js';
