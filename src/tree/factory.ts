/** Building a tree without a container: for tests, the consumer kit and benchmarks. */
import type { Logger } from 'pino';
import { Allocator } from '../core/allocator.js';
import { InodeTable } from '../core/inode-table.js';
import { MemoryStore } from '../core/memory-store.js';
import type { InodeStore } from '../core/store.js';
import { silentLogger } from '../log.js';
import type { Clock, HostIds, NamespaceSource, ProcessSource } from '../sources/types.js';
import { INCARNATIONS, type HandleObject } from './context.js';
import { HandleTree, TableEventRelay, type HandleTreeOptions } from './handle-fs.js';
import type { Timers } from './timers.js';

export interface CreateHandleTreeDeps {
  processSource: ProcessSource;
  namespaceSource: NamespaceSource;
  hostIds: HostIds;
  /** Default: silent. */
  logger?: Logger;
  /** Default: a new MemoryStore. Its rows are restored into the new table. */
  store?: InodeStore;
  /** Numbers the allocator takes from the store at a time. Default 1024. */
  allocatorChunk?: number;
  timers?: Timers;
  clock?: Clock;
  options?: HandleTreeOptions;
}

export interface HandleTreeKit {
  tree: HandleTree;
  table: InodeTable<HandleObject>;
  store: InodeStore;
}

/** A tree over a new table (scope: the source's identity scope, the boot id) on `store`, with the store's rows restored. */
export function createHandleTree(deps: CreateHandleTreeDeps): HandleTreeKit {
  const logger = deps.logger ?? silentLogger();
  const store = deps.store ?? new MemoryStore();
  const relay = new TableEventRelay();
  const table = new InodeTable<HandleObject>({
    store,
    allocator: new Allocator(store, deps.allocatorChunk ?? 1024),
    scope: deps.processSource.identityScope(),
    logger: logger.child({ layer: 'core' }),
    events: relay,
    incarnations: INCARNATIONS,
  });
  const tree = new HandleTree({
    table,
    processSource: deps.processSource,
    namespaceSource: deps.namespaceSource,
    hostIds: deps.hostIds,
    logger: logger.child({ layer: 'tree' }),
    relay,
    ...(deps.timers === undefined ? {} : { timers: deps.timers }),
    ...(deps.clock === undefined ? {} : { clock: deps.clock }),
    ...(deps.options === undefined ? {} : { options: deps.options }),
  });
  tree.restore(store.load());
  return { tree, table, store };
}
