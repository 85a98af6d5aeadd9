import { ContainerModule } from 'inversify';
import type { Logger } from 'pino';
import { LOGGER } from '../tokens.js';
import { Allocator } from './allocator.js';
import { InodeTable, type IncarnationOrder } from './inode-table.js';
import type { InodeStore } from './store.js';
import { CORE } from './tokens.js';

/**
 * The core's bindings: one allocator and one table per container. The store and the scope are
 * bound by whoever assembles the container (the service, or the consumer kit); the layer above
 * listens to the table's events itself (InodeTable.listen).
 */
export const coreModule = new ContainerModule(({ bind }) => {
  bind(CORE.Allocator)
    .toDynamicValue((ctx) => new Allocator(ctx.get<InodeStore>(CORE.Store)))
    .inSingletonScope();
  bind(CORE.Table)
    .toDynamicValue(
      (ctx) =>
        new InodeTable<unknown>({
          store: ctx.get<InodeStore>(CORE.Store),
          allocator: ctx.get<Allocator>(CORE.Allocator),
          scope: ctx.get<string>(CORE.Scope),
          logger: ctx.get<Logger>(LOGGER).child({ layer: 'core' }),
          incarnations: ctx.get<Record<string, IncarnationOrder>>(CORE.Incarnations, { optional: true }) ?? {},
        }),
    )
    .inSingletonScope();
});
