/**
 * inversify tokens of the store layer. Explicit symbols, no decorators. The store is also bound
 * to the core's CORE.Store (src/core/tokens.ts), which is what the allocator and table resolve.
 */
export const STORE_TOKENS = {
  /** StoreOptions: openSqliteStore() options without the logger (the CLI binds it from --state). */
  Options: Symbol.for('handlefs.store.Options'),
  /** The SqliteStore itself, for its start-up API (startup report, pruneOtherScopes, pruneWhere). */
  SqliteStore: Symbol.for('handlefs.store.SqliteStore'),
} as const;
