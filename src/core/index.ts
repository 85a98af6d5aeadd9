export { Allocator } from './allocator.js';
export { Dentry, Inode, type Identity } from './inode.js';
export {
  InodeTable,
  ReleasedDentryError,
  StaleIdentityError,
  type IncarnationOrder,
  type InodeTableOptions,
  type TableCounters,
  type TableEvents,
} from './inode-table.js';
export { MemoryStore } from './memory-store.js';
export { coreModule } from './module.js';
export { FIRST_DYNAMIC_INO, MAX_INO, ROOT_INO, isValidIno } from './numbers.js';
export { SingleFlight } from './single-flight.js';
export type { InodeRecord, InodeStore, NumberRange } from './store.js';
export { CORE } from './tokens.js';
