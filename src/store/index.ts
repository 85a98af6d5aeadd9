export {
  DEFAULT_STATE_PATH,
  SqliteStore,
  StateNotWritableError,
  openSqliteStore,
  type SqliteStoreOptions,
  type StoreStartup,
} from './sqlite-store.js';
export { APPLICATION_ID, SCHEMA_VERSION } from './schema.js';
export { StateLockedError, lockHolders } from './lock.js';
export { NotOurStateError, classifyStateFile } from './ownership.js';
export { WITNESS_LOOKAHEAD, type WitnessDirs } from './witness.js';
export { CLOCK_LEAD, clockCeiling, formatHwm, parseHwm, readHwm, rowChecksum, type HwmRead } from './damage.js';
export { storeModule, type StoreOptions } from './module.js';
export { STORE_TOKENS } from './tokens.js';
