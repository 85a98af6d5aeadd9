import { ContainerModule } from 'inversify';
import type { Logger } from 'pino';
import { LOGGER } from '../tokens.js';
import { Allocator } from './allocator.js';
import { InodeTable, type IncarnationOrder, type TableEvents } from './inode-table.js';
import type { InodeStore } from './store.js';
import { CORE } from './tokens.js';

/**
 * The core's bindings: one allocator and one table per container. The store, the scope and the
 * events are bound by whoever assembles the container (the service, or the consumer kit).
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
          events: ctx.get<TableEvents<unknown>>(CORE.Events, { optional: true }) ?? {},
          incarnations: ctx.get<Record<string, IncarnationOrder>>(CORE.Incarnations, { optional: true }) ?? {},
        }),
    )
    .inSingletonScope();
});
