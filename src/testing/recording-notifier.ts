/**
 * A Notifier that records what the kernel would have been told to invalidate, and the
 * ConnectionInfo an INIT would have negotiated: what the consumer kit hands the filesystem
 * instead of a FUSE connection.
 */
import { FUSE_KERNEL_MINOR_VERSION, FUSE_KERNEL_VERSION } from '../fuse/abi.js';
import { NotifyNotSupportedError, type ConnectionInfo, type Notifier, type NotifySupport } from '../fuse/types.js';

/** One notification, as the filesystem sent it (node ids are inode numbers in handlefs). */
export type Invalidation =
  /** FUSE_NOTIFY_INVAL_ENTRY: drop the cached name `name` in directory `parent`. */
  | { op: 'invalEntry'; parent: number; name: string }
  /** FUSE_NOTIFY_INVAL_INODE: drop cached attributes (and data) of node `ino`. `off`/`len` only when not 0/0. */
  | { op: 'invalInode'; ino: number; off?: number; len?: number }
  | { op: 'pollWakeup'; kh: number }
  /** FUSE_NOTIFY_INVAL_ENTRY with FUSE_EXPIRE_ONLY. */
  | { op: 'expireEntry'; parent: number; name: string }
  /** FUSE_NOTIFY_DELETE: `name` in `parent`, which was `child`, is gone. */
  | { op: 'delete'; parent: number; child: number; name: string };

export const ALL_NOTIFICATIONS: NotifySupport = Object.freeze({ invalInode: true, invalEntry: true, delete: true, expireOnly: true });

/**
 * A Notifier that records each notification as the filesystem sends it (synchronously, so a test
 * sees it at once), then hands it to `forward` (the FUSE session's notifier, which writes it to
 * the connection after the replies in flight) if there is one.
 */
export class RecordingNotifier implements Notifier {
  /** The notifications sent so far, in order. */
  readonly notes: Invalidation[] = [];
  /** Which notifications the simulated connection negotiated. */
  readonly supports: NotifySupport;

  constructor(
    supports: Partial<NotifySupport> = {},
    private readonly forward?: Notifier,
  ) {
    this.supports = Object.freeze({ ...ALL_NOTIFICATIONS, ...supports });
  }

  invalEntry(parent: number, name: string): Promise<boolean> {
    this.check('INVAL_ENTRY', this.supports.invalEntry);
    this.notes.push({ op: 'invalEntry', parent, name });
    return this.forward?.invalEntry(parent, name) ?? Promise.resolve(true);
  }

  expireEntry(parent: number, name: string): Promise<boolean> {
    this.check('INVAL_ENTRY(EXPIRE_ONLY)', this.supports.expireOnly);
    this.notes.push({ op: 'expireEntry', parent, name });
    return this.forward?.expireEntry(parent, name) ?? Promise.resolve(true);
  }

  invalInode(ino: number, off = 0, len = 0): Promise<boolean> {
    this.check('INVAL_INODE', this.supports.invalInode);
    this.notes.push(off === 0 && len === 0 ? { op: 'invalInode', ino } : { op: 'invalInode', ino, off, len });
    return this.forward?.invalInode(ino, off, len) ?? Promise.resolve(true);
  }

  delete(parent: number, child: number, name: string): Promise<boolean> {
    this.check('DELETE', this.supports.delete);
    this.notes.push({ op: 'delete', parent, child, name });
    return this.forward?.delete(parent, child, name) ?? Promise.resolve(true);
  }

  pollWakeup(kh: number): Promise<boolean> {
    this.notes.push({ op: 'pollWakeup', kh });
    return this.forward?.pollWakeup?.(kh) ?? Promise.resolve(true);
  }

  /** Forgets what was recorded. */
  clear(): void {
    this.notes.length = 0;
  }

  /** What was recorded since the last take()/clear(), and forgets it. */
  take(): Invalidation[] {
    return this.notes.splice(0, this.notes.length);
  }

  /** Like the session's notifier: a notification the connection did not negotiate throws at once. */
  private check(what: string, supported: boolean): void {
    if (!supported) throw new NotifyNotSupportedError(what, 'not negotiated on this (test) connection');
  }
}

/** Options of connectionInfo(): the timeouts and notifications of the simulated connection. */
export interface ConnectionInfoOptions {
  /** Seconds; what the mount's entry_timeout would be. Default 1 (the mount's default). */
  entryTimeout?: number;
  /** Seconds; default 1. */
  attrTimeout?: number;
  /** Notifications the connection supports; default all. */
  notify?: Partial<NotifySupport>;
}

/** The ConnectionInfo a current kernel's INIT would give (protocol 7.45, READDIRPLUS auto, export support). */
export function connectionInfo(options: ConnectionInfoOptions = {}): ConnectionInfo {
  const n = { ...ALL_NOTIFICATIONS, ...options.notify };
  return Object.freeze({
    major: FUSE_KERNEL_VERSION,
    minor: FUSE_KERNEL_MINOR_VERSION,
    kernelMajor: FUSE_KERNEL_VERSION,
    kernelMinor: FUSE_KERNEL_MINOR_VERSION,
    kernelFlags: 0,
    kernelFlags2: 0,
    flags: 0,
    flags2: 0,
    maxReadahead: 131072,
    maxWrite: 4096,
    entryTimeout: options.entryTimeout ?? 1,
    attrTimeout: options.attrTimeout ?? 1,
    capabilities: Object.freeze({
      readdirplus: true,
      readdirplusAuto: true,
      exportSupport: true,
      parallelDirops: true,
      asyncRead: true,
      autoInvalData: true,
      explicitInvalData: false,
      directIoAllowMmap: false,
      notifyInvalInode: n.invalInode,
      notifyInvalEntry: n.invalEntry,
      notifyDelete: n.delete,
      notifyExpireOnly: n.expireOnly,
    }),
  });
}
