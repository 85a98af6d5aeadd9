/** Inversify tokens of the tree. Symbol.for() so two copies of the module agree on them. */
export const TREE = {
  /** The HandleTree (also bound as FUSE_TOKENS.FileSystem). Singleton; destroyed on unbind. */
  HandleTree: Symbol.for('handlefs.tree.HandleTree'),
  /** Optional HandleTreeOptions (timeouts, grace period, sweep interval). */
  Options: Symbol.for('handlefs.tree.Options'),
  /** Optional Timers (default: real, unref()ed timers over SOURCES.Clock). Tests bind ManualTimers. */
  Timers: Symbol.for('handlefs.tree.Timers'),
} as const;
