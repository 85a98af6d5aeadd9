/** The handle tree: pid/, ns/<type>/, by-ino/ served as a LowLevelFileSystem. */
export { HandleTree, TableEventRelay, type HandleTreeDeps, type HandleTreeOptions } from './handle-fs.js';
export { createHandleTree, type CreateHandleTreeDeps, type HandleTreeKit } from './factory.js';
export { createTreeModule, treeModule, type TreeModuleOptions } from './module.js';
export { TREE } from './tokens.js';
export { ProcObject, ProcessHandles, processIdentity, type IncarnationReader } from './process-handles.js';
export { NsObject, NamespaceHandles, namespaceIdentity, nsIncarnation } from './namespace-handles.js';
export type { HandleObject } from './context.js';
export { ActionError, type ActionErrorCode, type Caller, type EnterTarget, type HandleKindActions } from './actions.js';
export type { HeldNamespace } from './handle-fs.js';
export { Invalidator, type InvalidationCounters } from './invalidation.js';
export { ManualTimers, realTimers, type Timers, type TimerHandle, type AdvancableClock } from './timers.js';
export { renderNamespace, renderProcess, escapeValue, stateText, handleName, UNREADABLE, NONE } from './render.js';
export {
  ROOT_DIR,
  PID_DIR,
  NS_DIR,
  BY_INO_DIR,
  NS_TYPE_DIR_BASE,
  MAX_PID,
  MIN_NS_INUM,
  MAX_NS_INUM,
  NAME_MAX,
  nsTypeDir,
  nsTypeOfDir,
  parsePidName,
  parseInumName,
  parseInoName,
} from './layout.js';
