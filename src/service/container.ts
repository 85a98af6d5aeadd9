/**
 * The one place a handlefs container is assembled. The service and the consumer kit both call
 * assembleContainer(); they differ only in the store, the sources and the clock/timers bound.
 */
import { Container, type ContainerModule } from 'inversify';
import type { Logger } from 'pino';
import { coreModule } from '../core/module.js';
import type { InodeStore } from '../core/store.js';
import { CORE } from '../core/tokens.js';
import { fuseModule } from '../fuse/module.js';
import type { MountOptions } from '../fuse/mount.js';
import { FUSE_TOKENS } from '../fuse/tokens.js';
import { LOGGER } from '../tokens.js';
import type { HandleTreeOptions } from '../tree/handle-fs.js';
import { createTreeModule } from '../tree/module.js';
import type { Timers } from '../tree/timers.js';
import { TREE } from '../tree/tokens.js';

export interface AssembleOptions {
  logger: Logger;
  /**
   * The store: a module binding CORE.Store (the service passes storeModule(...), the SQLite
   * store), or an instance (the kit's MemoryStore). Passed in rather than imported here so that
   * the consumer kit never loads better-sqlite3.
   */
  store: { module: ContainerModule } | { instance: InodeStore };
  /** The host sources: createSourcesModule(...) for the real host, createFakeSourcesModule(...) for tests. */
  sources: ContainerModule;
  tree?: HandleTreeOptions;
  /** Timers for the tree's grace periods and sweeps (the kit binds manual timers). */
  timers?: Timers;
  /** What the FUSE server mounts with (the service's parsed -o options). */
  mountOptions?: MountOptions;
}

export function assembleContainer(options: AssembleOptions): Container {
  const container = new Container();
  container.bind(LOGGER).toConstantValue(options.logger);
  container.bind(FUSE_TOKENS.Logger).toConstantValue(options.logger.child({ layer: 'fuse' }));
  if ('module' in options.store) {
    container.load(options.store.module);
  } else {
    const store = options.store.instance;
    container.bind<InodeStore>(CORE.Store).toConstantValue(store);
  }
  if (options.mountOptions !== undefined) container.bind<MountOptions>(FUSE_TOKENS.MountOptions).toConstantValue(options.mountOptions);
  if (options.timers !== undefined) container.bind<Timers>(TREE.Timers).toConstantValue(options.timers);
  container.load(coreModule, options.sources, createTreeModule({ bindScope: true, ...(options.tree && { options: options.tree }) }), fuseModule);
  return container;
}
