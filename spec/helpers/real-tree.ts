/**
 * The tree as the service assembles it (assembleContainer) over the real host's sources, with an
 * in-memory store: what the real-mount specs of the tree serve. unbind() ends it (the tree's
 * destroy, the exit watcher's close), as the service's shutdown does.
 */
import type { Logger } from 'pino';
import type { InodeTable } from '../../src/core/inode-table.js';
import { MemoryStore } from '../../src/core/memory-store.js';
import { CORE } from '../../src/core/tokens.js';
import { assembleContainer } from '../../src/service/container.js';
import { createSourcesModule } from '../../src/sources/module.js';
import type { HandleObject } from '../../src/tree/context.js';
import type { HandleTree, HandleTreeOptions } from '../../src/tree/handle-fs.js';
import { TREE } from '../../src/tree/tokens.js';

export function assembleRealTree(logger: Logger, options: HandleTreeOptions = {}): { tree: HandleTree; table: InodeTable<HandleObject>; unbind(): void } {
  const container = assembleContainer({ logger, store: { instance: new MemoryStore() }, sources: createSourcesModule({ logger }), tree: options });
  return {
    tree: container.get<HandleTree>(TREE.HandleTree),
    table: container.get<InodeTable<HandleObject>>(CORE.Table),
    unbind: () => container.unbindAll(),
  };
}
