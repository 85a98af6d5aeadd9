/** Inversify service identifiers of the host sources (see module.ts). */
import type { ServiceIdentifier } from 'inversify';
import type { Logger } from 'pino';
import type { ExitWatcher } from './exit-watcher.js';
import type { Clock, HostIds, NamespaceSource, ProcessSource } from './types.js';

export const SOURCES = {
  /** The pino.Logger the sources log to (a child of the one given to the module). */
  Logger: Symbol.for('handlefs.sources.Logger') as ServiceIdentifier<Logger>,
  HostIds: Symbol.for('handlefs.sources.HostIds') as ServiceIdentifier<HostIds>,
  /** Only bound by the real module; fakes notify exits themselves. */
  ExitWatcher: Symbol.for('handlefs.sources.ExitWatcher') as ServiceIdentifier<ExitWatcher>,
  ProcessSource: Symbol.for('handlefs.sources.ProcessSource') as ServiceIdentifier<ProcessSource>,
  NamespaceSource: Symbol.for('handlefs.sources.NamespaceSource') as ServiceIdentifier<NamespaceSource>,
  Clock: Symbol.for('handlefs.sources.Clock') as ServiceIdentifier<Clock>,
} as const;
