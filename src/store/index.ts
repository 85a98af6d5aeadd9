export {
  DEFAULT_MAX_CHUNK,
  DEFAULT_MIN_CHUNK,
  DEFAULT_STATE_PATH,
  SqliteStore,
  StateNotWritableError,
  openSqliteStore,
  type SqliteStoreOptions,
  type StoreStartup,
} from './sqlite-store.js';
export { APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, SchemaError, type Migration } from './schema.js';
export { StateLockedError, acquireStateLock, lockHolders, lockPathFor, type StateLock } from './lock.js';
export { NotOurStateError, classifyStateFile, type StateFileKind } from './ownership.js';
export { StateWitness, WITNESS_LOOKAHEAD, stateId, type WitnessDirs } from './witness.js';
export {
  CLOCK_LEAD,
  StoreDamageError,
  clockCeiling,
  formatHwm,
  parseHwm,
  readHwm,
  metaChecksum,
  nameChecksum,
  rowChecksum,
  type HwmRead,
  type HwmRecord,
} from './damage.js';
export { storeModule, type StoreOptions } from './module.js';
export { STORE_TOKENS } from './tokens.js';
