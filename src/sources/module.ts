/**
 * Inversify wiring of the real host sources. No decorators: every service is built by
 * toDynamicValue from the tokens in tokens.ts. Fakes: createFakeSourcesModule in
 * src/testing/fake-sources.ts binds the same tokens.
 */
import { ContainerModule } from 'inversify';
import type { Logger } from 'pino';
import { ExitWatcher } from './exit-watcher.js';
import { readHostIds } from './host-ids.js';
import type { NativeHelper } from './native.js';
import { ProcNamespaceSource } from './proc-namespace-source.js';
import { ProcProcessSource } from './proc-process-source.js';
import { SOURCES } from './tokens.js';
import { systemClock, type Clock, type HostIds } from './types.js';

export interface SourcesModuleOptions {
  logger: Logger;
  /** Default '/proc'. */
  procRoot?: string;
  /** Default: read from the host (readHostIds). */
  hostIds?: HostIds;
  /** Default systemClock. */
  clock?: Clock;
  /** Default: the built helper, or null (polling exit watcher, no namespace ids) if not built. */
  native?: NativeHelper | null;
  /** Processes scanned at once by NamespaceSource.list(). Default 16. */
  concurrency?: number;
}

export function createSourcesModule(options: SourcesModuleOptions): ContainerModule {
  const procRoot = options.procRoot ?? '/proc';
  const native = options.native;
  return new ContainerModule(({ bind }) => {
    bind(SOURCES.Logger).toConstantValue(options.logger.child({ component: 'sources' }));
    bind(SOURCES.Clock).toConstantValue(options.clock ?? systemClock);
    bind(SOURCES.HostIds)
      .toDynamicValue((ctx) => options.hostIds ?? readHostIds(ctx.get(SOURCES.Logger)))
      .inSingletonScope();
    bind(SOURCES.ExitWatcher)
      .toDynamicValue((ctx) =>
        native === undefined
          ? new ExitWatcher({ logger: ctx.get(SOURCES.Logger), procRoot })
          : new ExitWatcher({ logger: ctx.get(SOURCES.Logger), procRoot, native }),
      )
      .inSingletonScope()
      .onDeactivation((watcher) => watcher.close());
    bind(SOURCES.ProcessSource)
      .toDynamicValue(
        (ctx) =>
          new ProcProcessSource({
            logger: ctx.get(SOURCES.Logger),
            hostIds: ctx.get(SOURCES.HostIds),
            procRoot,
            exitWatcher: ctx.get(SOURCES.ExitWatcher),
            ...(native === undefined ? {} : { native }),
          }),
      )
      .inSingletonScope();
    bind(SOURCES.NamespaceSource)
      .toDynamicValue((ctx) => {
        const base = { logger: ctx.get(SOURCES.Logger), procRoot, concurrency: options.concurrency ?? 16 };
        return new ProcNamespaceSource(native === undefined ? base : { ...base, native });
      })
      .inSingletonScope();
  });
}
