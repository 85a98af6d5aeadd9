import { ContainerModule } from 'inversify';
import type { Logger } from 'pino';
import { CORE } from '../core/tokens.js';
import type { InodeStore } from '../core/store.js';
import { LOGGER } from '../tokens.js';
import { openSqliteStore } from './open-store.js';
import type { SqliteStore, SqliteStoreOptions } from './sqlite-store.js';
import { STORE_TOKENS } from './tokens.js';

export type StoreOptions = Omit<SqliteStoreOptions, 'logger'>;

/**
 * Binds STORE_TOKENS.SqliteStore, and the core's CORE.Store to the same instance: one store,
 * opened on first resolution (singleton) with the options bound to STORE_TOKENS.Options (or
 * `options` given here) and the LOGGER, and closed (flush, unlock) when the binding is
 * deactivated by container.unbind()/unload().
 */
export function storeModule(options?: StoreOptions): ContainerModule {
  return new ContainerModule(({ bind }) => {
    if (options) bind<StoreOptions>(STORE_TOKENS.Options).toConstantValue(options);
    bind<SqliteStore>(STORE_TOKENS.SqliteStore)
      .toDynamicValue((ctx) =>
        openSqliteStore({
          ...(ctx.get<StoreOptions>(STORE_TOKENS.Options, { optional: true }) ?? {}),
          logger: ctx.get<Logger>(LOGGER).child({ layer: 'store' }),
        }),
      )
      .inSingletonScope()
      .onDeactivation((store) => {
        store.close();
      });
    bind<InodeStore>(CORE.Store)
      .toDynamicValue((ctx) => ctx.get<SqliteStore>(STORE_TOKENS.SqliteStore))
      .inSingletonScope();
  });
}
