/** handlefs/testing: drive handlefs in-process, without root or FUSE. */
export { MemoryStore } from '../core/memory-store.js';
