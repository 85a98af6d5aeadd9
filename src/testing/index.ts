/**
 * handlefs/testing: drive handlefs in-process, without root, /dev/fuse or /proc.
 *
 *   import { createTestFilesystem } from 'handlefs/testing';
 *   const fs = createTestFilesystem();
 *   const p = fs.host.start({ comm: 'worker' });
 *   const ino = await fs.ino(`pid/${p.pid}`);
 *   fs.host.reusePid(p.pid);                       // same pid, new start time
 *   await fs.ino(`pid/${p.pid}`);                  // a new, larger number
 *   await fs.stat(`by-ino/${ino}`);                // throws FsError, code 'ENOENT'
 *   await fs.close();
 *
 * See docs/testing.md. Importing this module loads neither the native helper nor SQLite's addon.
 */
export {
  createTestFilesystem,
  parseFields,
  TestFilesystem,
  type FileStat,
  type ListOptions,
  type NodeCounts,
  type TestFilesystemOptions,
} from './kit.js';
export { FsError, isFsError, type ErrnoCode, type FsErrorOptions } from './errors.js';
export {
  FakeKernel,
  /** The kit's connection was called InProcessSession before it drove the real session: the same class. */
  FakeKernel as InProcessSession,
  type Caller,
  type FakeKernelOptions,
  /** FakeKernelOptions under the kit's earlier name. */
  type FakeKernelOptions as InProcessSessionOptions,
  type OpenFile,
  type ReaddirOptions,
  type SessionMaker,
} from './fake-kernel.js';
export { connectionInfo, RecordingNotifier, type ConnectionInfoOptions, type Invalidation } from './recording-notifier.js';
export * from './fake-sources.js';
export { MemoryStore } from '../core/memory-store.js';
export { ManualTimers, type AdvancableClock, type TimerHandle, type Timers } from '../tree/timers.js';
export { BY_INO_DIR, MAX_PID, NAME_MAX, NS_DIR, PID_DIR, ROOT_DIR, nsTypeDir } from '../tree/layout.js';
export { Errno, errnoName, O_APPEND, O_CREAT, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../fuse/abi.js';
export { NS_TYPES, type NsType, type NamespaceInfo, type ProcessInfo, type IdSet, type ProcessField, type ProcessEnding } from '../sources/types.js';
export { ActionError, type ActionErrorCode, type Caller as ActionCaller } from '../tree/actions.js';
export { POLLIN } from '../fuse/abi.js';
export type {
  Attr,
  AttrReply,
  ConnectionInfo,
  DirEntry,
  Entry,
  LowLevelFileSystem,
  Notifier,
  NotifySupport,
  OpenReply,
  StatfsReply,
} from '../fuse/types.js';
export type { HandleTree, HandleTreeOptions } from '../tree/handle-fs.js';
export type { HandleObject } from '../tree/context.js';
export type { InodeTable, TableCounters } from '../core/inode-table.js';
