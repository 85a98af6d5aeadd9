/** inversify tokens of the core. */
export const CORE = {
  /** The InodeStore the allocator and table draw from (bound by the store layer or the kit). */
  Store: Symbol.for('handlefs.core.Store'),
  /** The table's scope: what incarnations are relative to (the boot id). */
  Scope: Symbol.for('handlefs.core.Scope'),
  /** How incarnations compare per kind (`Record<kind, IncarnationOrder>`); optional, default ordered. */
  Incarnations: Symbol.for('handlefs.core.Incarnations'),
  Allocator: Symbol.for('handlefs.core.Allocator'),
  Table: Symbol.for('handlefs.core.Table'),
} as const;
