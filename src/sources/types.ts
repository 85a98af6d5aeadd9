/**
 * The host sources: what handlefs reads about live processes and namespaces.
 *
 * This layer knows nothing of FUSE or of handlefs inode numbers. Real implementations read
 * /proc (src/sources/proc-*.ts); src/testing/fake-sources.ts implements the same interfaces
 * in memory for tests.
 */

export const NS_TYPES = ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'time', 'user', 'uts'] as const;
/** A namespace type: cgroup, ipc, mnt, net, pid, time, user or uts. */
export type NsType = (typeof NS_TYPES)[number];

export function isNsType(s: string): s is NsType {
  return (NS_TYPES as readonly string[]).includes(s);
}

/** Real, effective, saved set and filesystem ids, as in the Uid:/Gid: lines of /proc/PID/status. */
export interface IdSet {
  readonly real: number;
  readonly effective: number;
  readonly saved: number;
  readonly fs: number;
}

/**
 * Names used in ProcessInfo.unreadable.
 * - 'uid', 'gid': /proc/PID/status could not be read or lacked the line (the field is null)
 * - 'cgroup': /proc/PID/cgroup could not be read (the field is null)
 * - 'namespaces': at least one /proc/PID/ns/TYPE link could not be read (EACCES, ...); the
 *   types that could be read are still present in `namespaces`
 */
export type ProcessField = 'uid' | 'gid' | 'cgroup' | 'namespaces';

/** One process (thread-group leader), identified by (bootId, pid, startTime). */
export interface ProcessInfo {
  readonly pid: number;
  /** Start time in clock ticks since boot (field 22 of /proc/PID/stat). */
  readonly startTime: number;
  /**
   * What tells this process apart from every other process that had or will have its pid in this
   * boot, growing with each new one: the kernel's pidfs inode number of its struct pid (Linux 6.9+,
   * through a pidfd; never reused during uptime). Where that cannot be had (no native helper), the
   * start time — which two processes started within one clock tick (10 ms) under fast pid reuse
   * share, so identityScope() says which of the two it is.
   */
  readonly incarnation: number;
  readonly bootId: string;
  /** 0 for pid 1 and for processes whose parent is outside our pid namespace. */
  readonly ppid: number;
  /** One-letter state from /proc/PID/stat: 'R', 'S', 'D', 'Z', 'T', 't', 'X', 'I', ... */
  readonly state: string;
  /** Command name (at most 15 bytes in the kernel; may contain spaces and parentheses). */
  readonly comm: string;
  readonly uid: IdSet | null;
  readonly gid: IdSet | null;
  /** The cgroup path alone ("/user.slice/..." from the v2 line "0::/user.slice/...") or, on a v1-only host, the name=systemd (else first) path. */
  readonly cgroup: string | null;
  /**
   * nsfs inode numbers of the namespaces the process is in. A zombie has only 'pid' and 'user'
   * left (its other namespaces are released at exit; that is not reported as unreadable).
   */
  readonly namespaces: Readonly<Partial<Record<NsType, number>>>;
  /** Fields that could not be read; empty when everything was read. */
  readonly unreadable: readonly ProcessField[];
  /**
   * The owner of /proc/PID: the kernel's "dump owner", the effective uid while the process is
   * dumpable, root when it is not (set-id programs, PR_SET_DUMPABLE 0). Reading another
   * process's /proc/PID/ns needs it to be the reader (ptrace access). null: could not be read;
   * absent: the source does not say.
   */
  readonly dumpOwner?: number | null;
  /**
   * The inode number of the process's pidfs file (what fstat on a pidfd gives); null (or absent)
   * where the kernel has no pidfs or the native helper is not built.
   */
  readonly pidfsIno?: number | null;
}

/** How a process stands, as the kernel tells it through a pidfd held since before its exit. */
export type ProcessEnding =
  | { readonly state: 'running' }
  | { readonly state: 'exited'; readonly code: number }
  | { readonly state: 'killed'; readonly signal: number }
  /** Ended, but how is not known (no pidfd held at the exit, or a kernel before 6.15). */
  | { readonly state: 'unknown' };

/** The ids kill(2) compares: the caller's real/effective uid against the target's real/saved uid. */
export interface ProcessUids {
  readonly real: number;
  readonly effective: number;
  readonly saved: number;
}

/**
 * A descriptor held for exactly one process (a pidfd): it never names another process, whatever
 * becomes of the pid. Opened by ProcessSource.openPidfd.
 */
export interface ProcessPidfd {
  /** The pidfs inode number of the process (fstat of the pidfd). */
  readonly pidfsIno: number;
  /** Running, or how it ended (a zombie has ended). */
  ending(): ProcessEnding;
  /** The process's uids now; null once it has exited. */
  uids(): ProcessUids | null;
  /** Sends `signal` to that process; throws an Error with code 'ESRCH' once it has exited. */
  signal(signal: number): void;
  /**
   * As ProcessSource.watchExit, through this descriptor (a pidfd turns readable at the exit):
   * calls onExit once, never from inside watchExit, when the process has exited (a zombie counts).
   * Returns an idempotent disposer; close() disposes every watch.
   */
  watchExit(onExit: () => void): () => void;
  close(): void;
  readonly closed: boolean;
}

/** Decodes a wait status (waitpid(2), PIDFD_INFO_EXIT, /proc/PID/stat field 52). */
export function endingOfWaitStatus(status: number): ProcessEnding {
  const sig = status & 0x7f;
  if (sig === 0) return { state: 'exited', code: (status >> 8) & 0xff };
  if (sig !== 0x7f) return { state: 'killed', signal: sig };
  return { state: 'unknown' };
}

export interface ProcessSource {
  /** The kernel boot id (/proc/sys/kernel/random/boot_id). */
  bootId(): string;
  /** The machine id (/etc/machine-id), or UNKNOWN_MACHINE_ID. */
  machineId(): string;
  /**
   * What the incarnations of this source's processes and namespaces are relative to: the boot id
   * when the kernel's never-reused ids are used (pidfs inodes, namespace ids), the boot id plus a
   * marker when start times stand in for them. Stored identities of another scope are never
   * compared with this source's.
   */
  identityScope(): string;
  /** Pids of live thread-group leaders (zombies included), ascending. Never throws for vanishing processes. */
  list(): Promise<number[]>;
  /** Null if the pid names no process (or names a thread that is not a group leader). */
  read(pid: number): Promise<ProcessInfo | null>;
  /**
   * Pids whose /proc/PID is owned by `uid` (see ProcessInfo.dumpOwner), ascending: the only
   * processes a non-root caller may inspect. Optional: without it, callers filter list().
   */
  listOwnedBy?(uid: number): Promise<number[]>;
  /**
   * Calls onExit once, asynchronously (never from inside watchExit), when the process
   * (pid, startTime) has exited — becoming a zombie counts — or at once if it already has or
   * the pid now names another start time. Returns an idempotent disposer; after it is called
   * onExit is never called. `incarnation`, when given, is the one read() reported: a source
   * whose incarnations are pidfs inode numbers checks the watched process against it (one fstat)
   * instead of reading /proc again.
   */
  watchExit(pid: number, startTime: number, onExit: () => void, incarnation?: number): () => void;
  /**
   * A pidfd for the process now under `pid` if it is the incarnation `incarnation` (and alive:
   * not a zombie); null otherwise, or where pidfds are not available (no native helper).
   */
  openPidfd?(pid: number, incarnation: number): ProcessPidfd | null;
  /**
   * A pidfd for the process of pidfs inode `pidfsIno`, reopened from that number alone (a pidfs
   * file handle: no pid, so no pid-reuse race), whether it runs or is a zombie; null once it has
   * been reaped (ESTALE), or where incarnations are not pidfs inode numbers or the kernel or the
   * native helper cannot. What a successor of the serving process uses to learn how a process it
   * never saw alive ended.
   */
  reopenPidfd?(pidfsIno: number): ProcessPidfd | null;
}

/** A namespace named by its nsfs inode number and, where the kernel has it, its 64-bit id. */
export interface NsRef {
  readonly inum: number;
  /** The kernel's never-reused namespace id (NS_GET_ID, Linux 6.18), decimal; null if unavailable. */
  readonly nsId: string | null;
}

/** One namespace, as a namespace source reports it. */
export interface NamespaceInfo {
  readonly type: NsType;
  /** nsfs inode number. Reused by the kernel after the namespace dies. */
  readonly inum: number;
  /** st_dev of the nsfs file. */
  readonly dev: number;
  /** See NsRef.nsId. */
  readonly nsId: string | null;
  /** Owning user namespace (NS_GET_USERNS); null for the initial user namespace or if it cannot be read. */
  readonly owner: NsRef | null;
  /** Only for 'pid' and 'user': the parent namespace (NS_GET_PARENT); null at the root or if it cannot be read. */
  readonly parent?: NsRef | null;
}

export interface NamespaceHandle {
  /** A snapshot taken when the handle was opened. */
  readonly info: NamespaceInfo;
  /** Releases the hold. Idempotent. */
  close(): void;
  readonly closed: boolean;
  /** The held nsfs descriptor, where the source has one (-1 once closed); fakes have none. */
  readonly fd?: number;
}

export interface NamespaceRef {
  readonly type: NsType;
  readonly inum: number;
}

export interface NamespaceSource {
  /**
   * Every namespace reachable through /proc/PID/ns/* (including pid_for_children and
   * time_for_children) and through nsfs bind mounts in our mount namespace, deduplicated,
   * sorted by (type, inum).
   */
  list(): Promise<NamespaceRef[]>;
  /**
   * Opens a hold on the namespace (the hold keeps it alive until close()) and reads its info;
   * null if the namespace is no longer reachable. Given nsId, also null when the namespace now
   * found under (type, inum) has another id (the kernel reuses inode numbers).
   */
  open(type: NsType, inum: number, nsId?: string): Promise<NamespaceHandle | null>;
  /**
   * Whether the namespace is still reachable (with nsId: as that incarnation), read without
   * taking a hold: a validation, never announced as a hold. (A hold opened and closed to check
   * would tell a keeper the namespace was let go, and its copy, maybe the namespace's last
   * reference, would be closed.) Its info, or null if unreachable.
   */
  check(type: NsType, inum: number, nsId?: string): Promise<NamespaceInfo | null>;
}

export interface Clock {
  /** Milliseconds; monotonic enough for timeouts and ages. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** machineId() when neither /etc/machine-id nor /var/lib/dbus/machine-id holds a valid id. */
export const UNKNOWN_MACHINE_ID = 'unknown';
/** bootId() when /proc/sys/kernel/random/boot_id cannot be read. */
export const UNKNOWN_BOOT_ID = 'unknown';

export interface HostIds {
  readonly bootId: string;
  readonly machineId: string;
  /** Where machineId came from; null when it is UNKNOWN_MACHINE_ID. */
  readonly machineIdSource: string | null;
}

/**
 * The host could not be read just now (EMFILE, ENFILE, ENOMEM, EIO, ...). Not evidence that the
 * object is gone: only "no such process" / "no such file" is. Handlers answer EIO; nothing is
 * marked dead on it.
 */
export class HostReadError extends Error {
  readonly code: string | undefined;
  constructor(what: string, cause: unknown) {
    const code = typeof (cause as { code?: unknown })?.code === 'string' ? (cause as { code: string }).code : undefined;
    super(`${what}: ${code ?? String(cause)} (the host could not be read; not taken as an exit)`, { cause });
    this.name = 'HostReadError';
    this.code = code;
  }
}
