/**
 * Inversify service identifiers of the FUSE layer. Symbol.for() so that two copies of the module
 * (e.g. the CLI and a test) agree on them.
 */
export const FUSE_TOKENS = {
  /** pino.Logger the layer logs to (bound by the application; a child logger is fine). */
  Logger: Symbol.for('handlefs.fuse.Logger'),
  /** The LowLevelFileSystem to serve (bound by the layer above). */
  FileSystem: Symbol.for('handlefs.fuse.FileSystem'),
  /** Parsed MountOptions (bound by the application; defaults if unbound). */
  MountOptions: Symbol.for('handlefs.fuse.MountOptions'),
  /** Extra SessionOptions (readdirplus, exportSupport, ...); optional. */
  SessionOptions: Symbol.for('handlefs.fuse.SessionOptions'),
  /** FuseMounter: mount/unmount/inspect with the bound logger. */
  Mounter: Symbol.for('handlefs.fuse.Mounter'),
  /** SessionFactory: (fs, channel, options?) => FuseSession. */
  SessionFactory: Symbol.for('handlefs.fuse.SessionFactory'),
  /** FuseServer: mounts FileSystem at a mountpoint with MountOptions and serves it. */
  Server: Symbol.for('handlefs.fuse.Server'),
} as const;
