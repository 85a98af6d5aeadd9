/**
 * Inversify wiring of the tree. No decorators: everything is a dynamic value under a symbol.
 *
 * Needs: CORE.Table (coreModule, with CORE.Store and CORE.Scope bound by the assembler — the
 * scope must be the boot id), the SOURCES tokens (createSourcesModule or the fakes), LOGGER.
 * Binds: CORE.Incarnations (how the tree's kinds compare), TREE.HandleTree and
 * FUSE_TOKENS.FileSystem. The tree listens to the table's events (it is built after the table and
 * subscribes itself) and restores the rows of CORE.Store when it is first resolved.
 */
import { ContainerModule } from 'inversify';
import type { Logger } from 'pino';
import type { InodeTable } from '../core/inode-table.js';
import type { InodeStore } from '../core/store.js';
import { CORE } from '../core/tokens.js';
import { FUSE_TOKENS } from '../fuse/tokens.js';
import { SOURCES } from '../sources/tokens.js';
import { LOGGER } from '../tokens.js';
import type { HandleObject } from './context.js';
import { INCARNATIONS } from './kinds.js';
import { HandleTree, type HandleTreeOptions } from './handle-fs.js';
import type { Timers } from './timers.js';
import { realTimers } from './timers.js';
import { TREE } from './tokens.js';

export interface TreeModuleOptions {
  /** Bound to TREE.Options (else that token may be bound elsewhere, or left unbound for defaults). */
  options?: HandleTreeOptions;
  /** Also bind CORE.Scope to the boot id of SOURCES.HostIds. Default false (the assembler binds it). */
  bindScope?: boolean;
  /** Restore CORE.Store's rows into the table when the tree is built. Default true. */
  restore?: boolean;
}

export function createTreeModule(config: TreeModuleOptions = {}): ContainerModule {
  return new ContainerModule(({ bind }) => {
    if (config.options) bind<HandleTreeOptions>(TREE.Options).toConstantValue(config.options);
    if (config.bindScope) bind<string>(CORE.Scope).toDynamicValue((ctx) => ctx.get(SOURCES.ProcessSource).identityScope()).inSingletonScope();
    bind(CORE.Incarnations).toConstantValue(INCARNATIONS);
    bind<HandleTree>(TREE.HandleTree)
      .toDynamicValue((ctx) => {
        const clock = ctx.get(SOURCES.Clock);
        const timers = ctx.get<Timers>(TREE.Timers, { optional: true }) ?? realTimers(clock);
        const options = ctx.get<HandleTreeOptions>(TREE.Options, { optional: true });
        const tree = new HandleTree({
          table: ctx.get<InodeTable<HandleObject>>(CORE.Table),
          processSource: ctx.get(SOURCES.ProcessSource),
          namespaceSource: ctx.get(SOURCES.NamespaceSource),
          hostIds: ctx.get(SOURCES.HostIds),
          logger: ctx.get<Logger>(LOGGER).child({ layer: 'tree' }),
          timers,
          ...(options === undefined ? {} : { options }),
        });
        if (config.restore ?? true) {
          const store = ctx.get<InodeStore>(CORE.Store, { optional: true });
          if (store !== undefined) tree.restore(store.load());
        }
        return tree;
      })
      .inSingletonScope()
      .onDeactivation((tree) => tree.destroy());
    bind(FUSE_TOKENS.FileSystem).toDynamicValue((ctx) => ctx.get<HandleTree>(TREE.HandleTree));
  });
}

/** The tree's bindings with defaults (restore on, CORE.Scope bound by the assembler). */
export const treeModule = createTreeModule();
