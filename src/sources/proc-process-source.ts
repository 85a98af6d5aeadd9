/**
 * ProcessSource over /proc: list() reads the /proc directory, read() reads
 * /proc/PID/{stat,status,cgroup} and the /proc/PID/ns/* links, watchExit() uses the ExitWatcher.
 */
import { closeSync, fstatSync, statSync } from 'node:fs';
import { readdir, readFile, readlink, stat as statPath } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import type { Logger } from 'pino';
import { ExitWatcher, readStat } from './exit-watcher.js';
import { tryLoadNative, type NativeHelper } from './native.js';
import {
  classifyProcError,
  NS_LINKS,
  parseCgroup,
  parseNsLink,
  parseStat,
  parseStatus,
  primaryCgroupPath,
  type StatFields,
  type StatusFields,
} from './parse.js';
import { NativePidfd } from './pidfd.js';
import { HostReadError, type HostIds, type NsType, type ProcessField, type ProcessInfo, type ProcessPidfd, type ProcessSource } from './types.js';

export interface ProcProcessSourceOptions {
  logger: Logger;
  hostIds: HostIds;
  /** Default '/proc'. */
  procRoot?: string;
  /** Default: a new ExitWatcher over the same procRoot (closed by close()). */
  exitWatcher?: ExitWatcher;
  /**
   * The native helper, for pidfs inode numbers as incarnations. Default: the built helper when
   * procRoot is the real /proc, else null (start times stand in; see identityScope()).
   */
  native?: NativeHelper | null;
}

type ReadResult<T> = { ok: true; value: T } | { ok: false; kind: 'gone' | 'denied' | 'other'; code?: string };

async function attempt<T>(fn: () => Promise<T>): Promise<ReadResult<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    const code = typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : undefined;
    return code === undefined
      ? { ok: false, kind: classifyProcError(err) }
      : { ok: false, kind: classifyProcError(err), code };
  }
}

/** The errno names of the helper's numbers. */
const ERRNO_NAMES = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

/** A file the native helper read: its text, or an error shaped like Node's (code = errno name). */
function fromNative(v: string | number | undefined): ReadResult<string> {
  if (typeof v === 'string') return { ok: true, value: v };
  const code = typeof v === 'number' ? (ERRNO_NAMES.get(v) ?? `E${v}`) : 'EIO';
  return { ok: false, kind: classifyProcError({ code }), code };
}

/** The ns links a process is read with (its own namespaces, not those for its children). */
const OWN_NS_LINKS = NS_LINKS.filter((l) => !l.forChildren);
const OWN_NS_LINK_NAMES = OWN_NS_LINKS.map((l) => l.link);

/** Reads of one process that raced with pid reuse are retried this many times. */
const MAX_READ_ATTEMPTS = 3;

export class ProcProcessSource implements ProcessSource {
  private readonly logger: Logger;
  private readonly hostIds: HostIds;
  private readonly procRoot: string;
  private readonly exitWatcher: ExitWatcher;
  private readonly ownsWatcher: boolean;
  private readonly native: NativeHelper | null;

  constructor(options: ProcProcessSourceOptions) {
    this.logger = options.logger;
    this.hostIds = options.hostIds;
    this.procRoot = options.procRoot ?? '/proc';
    this.native = options.native !== undefined ? options.native : this.procRoot === '/proc' ? tryLoadNative() : null;
    this.ownsWatcher = options.exitWatcher === undefined;
    this.exitWatcher =
      options.exitWatcher ?? new ExitWatcher({ logger: this.logger, procRoot: this.procRoot });
  }

  bootId(): string {
    return this.hostIds.bootId;
  }

  machineId(): string {
    return this.hostIds.machineId;
  }

  /** readdir of /proc lists thread-group leaders only (threads live under /proc/PID/task). */
  async list(): Promise<number[]> {
    const names = await readdir(this.procRoot);
    const pids: number[] = [];
    for (const name of names) {
      if (name.length === 0 || name.length > 10 || !/^[1-9]\d*$/.test(name)) continue;
      pids.push(Number(name));
    }
    return pids.sort((a, b) => a - b);
  }

  async listOwnedBy(uid: number): Promise<number[]> {
    const pids = await this.list();
    const owned: number[] = [];
    for (const pid of pids) {
      const st = await statPath(`${this.procRoot}/${pid}`).catch(() => null);
      if (st !== null && st.uid === uid) owned.push(pid);
    }
    return owned;
  }

  async read(pid: number): Promise<ProcessInfo | null> {
    if (!Number.isSafeInteger(pid) || pid <= 0) return null;
    for (let i = 0; i < MAX_READ_ATTEMPTS; i++) {
      const result = await this.readOnce(pid);
      if (result !== 'raced') return result;
    }
    this.logger.warn({ pid }, 'pid kept being reused while reading it; giving up');
    return null;
  }

  identityScope(): string {
    return this.native === null ? `${this.hostIds.bootId}+starttime` : this.hostIds.bootId;
  }

  /**
   * The pidfs inode number of the process now under `pid` (open a pidfd, fstat it, close it);
   * null if there is none or it is not a thread-group leader. The second stat read of readOnce()
   * makes sure it belongs to the process the other files were read from.
   */
  private pidfsInode(pid: number): number | null {
    let fd: number;
    try {
      fd = this.native!.pidfdOpen(pid);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ESRCH' || code === 'EINVAL' || code === 'ENOENT') return null;
      throw new HostReadError(`pidfd_open(${pid})`, err);
    }
    try {
      return fstatSync(fd).ino;
    } finally {
      closeSync(fd);
    }
  }

  watchExit(pid: number, startTime: number, onExit: () => void, incarnation?: number): () => void {
    // With the native helper, incarnations are pidfs inode numbers: the watcher's own pidfd can be checked against them.
    return this.exitWatcher.watch(pid, startTime, onExit, this.native !== null ? incarnation : undefined);
  }

  /** A pidfd reopened from its pidfs inode number (ProcessSource.reopenPidfd); null without the native helper. */
  reopenPidfd(pidfsIno: number): ProcessPidfd | null {
    if (this.native === null) return null;
    return NativePidfd.reopen(this.native, pidfsIno, this.procRoot);
  }

  /** A pidfd for that incarnation of `pid` (pidfs inode numbers are the incarnations here). */
  openPidfd(pid: number, incarnation: number): ProcessPidfd | null {
    if (this.native === null || !Number.isSafeInteger(pid) || pid <= 0) return null;
    return NativePidfd.open(this.native, pid, incarnation, this.procRoot);
  }

  /** Stops exit watches of the watcher this source created. */
  close(): void {
    if (this.ownsWatcher) this.exitWatcher.close();
  }

  private async readOnce(pid: number): Promise<ProcessInfo | null | 'raced'> {
    if (this.native?.readProc !== undefined) return this.readOnceNative(pid, this.native.readProc.bind(this.native));
    const dir = `${this.procRoot}/${pid}`;
    // Only "no such process/file" means gone (readStat answers null); anything else (EMFILE,
    // ENOMEM, ...) is an error for the caller to report, never a death certificate.
    const stat = await this.stat(pid);
    if (stat === null) return null;
    const incarnation = this.native === null ? stat.startTime : this.pidfsInode(pid);
    if (incarnation === null) return null;

    const [status, cgroup, namespaces, owner] = await Promise.all([
      attempt(() => readFile(`${dir}/status`, 'utf8')),
      attempt(() => readFile(`${dir}/cgroup`, 'utf8')),
      this.readNamespaces(dir),
      statPath(dir).then((st) => st.uid, () => null),
    ]);
    this.checkReads(dir, status, cgroup, namespaces);

    // Everything above must describe the same process: the pid may have been reused meanwhile.
    const again = await this.stat(pid);
    return this.assemble(pid, stat, again, incarnation, status, cgroup, namespaces, owner);
  }

  /**
   * readOnce() in one synchronous call of the native helper: the same files, the same rules, no
   * thread-pool round trip per file (a first lookup paid about 25 of them). /proc reads of
   * stat, status, cgroup and ns links never wait for anything a FUSE answer would finish.
   */
  private readOnceNative(pid: number, readProc: NonNullable<NativeHelper['readProc']>): ProcessInfo | null | 'raced' {
    const dir = `${this.procRoot}/${pid}`;
    const r = readProc(dir, true, OWN_NS_LINK_NAMES);
    const first = fromNative(r[0]);
    if (!first.ok) {
      if (first.kind === 'gone') return null;
      throw new HostReadError(`reading ${dir}/stat`, first);
    }
    const stat = parseStat(first.value);
    if (stat === null) return null;
    const ino = r[1] as number;
    if (ino < 0) {
      const code = ERRNO_NAMES.get(-ino);
      if (code === 'ESRCH' || code === 'EINVAL' || code === 'ENOENT') return null;
      throw new HostReadError(`pidfd_open(${pid})`, { code });
    }
    const status = fromNative(r[2]);
    const cgroup = fromNative(r[3]);
    const namespaces = this.namespacesFrom(OWN_NS_LINK_NAMES.map((_, i) => fromNative(r[4 + i])));
    this.checkReads(dir, status, cgroup, namespaces);
    const last = fromNative(r[4 + OWN_NS_LINK_NAMES.length]);
    if (!last.ok && last.kind !== 'gone') throw new HostReadError(`reading ${dir}/stat`, last);
    let owner: number | null = null;
    try {
      owner = statSync(dir).uid;
    } catch {
      owner = null;
    }
    return this.assemble(pid, stat, last.ok ? parseStat(last.value) : null, ino, status, cgroup, namespaces, owner);
  }

  private checkReads(dir: string, status: ReadResult<string>, cgroup: ReadResult<string>, namespaces: { error?: { code?: string } }): void {
    for (const [file, r] of [['status', status], ['cgroup', cgroup]] as const) {
      if (!r.ok && r.kind === 'other') throw new HostReadError(`reading ${dir}/${file}`, r);
    }
    if (namespaces.error !== undefined) throw new HostReadError(`reading ${dir}/ns`, namespaces.error);
  }

  /** The ProcessInfo of what was read, if the second stat read shows the same process. */
  private assemble(
    pid: number,
    stat: StatFields,
    again: StatFields | null,
    incarnation: number,
    status: ReadResult<string>,
    cgroup: ReadResult<string>,
    namespaces: { map: Partial<Record<NsType, number>>; failed: boolean },
    owner: number | null,
  ): ProcessInfo | null | 'raced' {
    if (again === null) return null;
    if (again.startTime !== stat.startTime) return 'raced';

    const unreadable: ProcessField[] = [];
    let fields: StatusFields = { tgid: null, uid: null, gid: null };
    if (status.ok) fields = parseStatus(status.value);
    else this.note(pid, 'status', status);
    if (fields.tgid !== null && fields.tgid !== pid) return null; // a thread, not a leader
    if (fields.uid === null) unreadable.push('uid');
    if (fields.gid === null) unreadable.push('gid');

    let cgroupPath: string | null = null;
    if (cgroup.ok) cgroupPath = primaryCgroupPath(parseCgroup(cgroup.value));
    else this.note(pid, 'cgroup', cgroup);
    if (cgroupPath === null) unreadable.push('cgroup');

    if (namespaces.failed) unreadable.push('namespaces');

    return {
      pid,
      startTime: stat.startTime,
      incarnation,
      bootId: this.hostIds.bootId,
      // stat from the second read: a process that turned zombie meanwhile is reported as one
      ppid: again.ppid,
      state: again.state,
      comm: again.comm,
      uid: fields.uid,
      gid: fields.gid,
      cgroup: cgroupPath,
      namespaces: namespaces.map,
      unreadable,
      dumpOwner: owner,
      pidfsIno: this.native === null ? null : incarnation,
    };
  }

  /** /proc/PID/stat; null when gone; HostReadError when it could not be read. */
  private async stat(pid: number): ReturnType<typeof readStat> {
    try {
      return await readStat(this.procRoot, pid);
    } catch (err) {
      throw new HostReadError(`reading ${this.procRoot}/${pid}/stat`, err);
    }
  }

  private async readNamespaces(
    dir: string,
  ): Promise<{ map: Partial<Record<NsType, number>>; failed: boolean; error?: { code?: string } }> {
    return this.namespacesFrom(await Promise.all(OWN_NS_LINKS.map((l) => attempt(() => readlink(`${dir}/ns/${l.link}`)))));
  }

  private namespacesFrom(results: ReadResult<string>[]): { map: Partial<Record<NsType, number>>; failed: boolean; error?: { code?: string } } {
    const links = OWN_NS_LINKS;
    const map: Partial<Record<NsType, number>> = {};
    let failed = false;
    let error: { code?: string } | undefined;
    results.forEach((r, i) => {
      const link = links[i]!;
      if (r.ok) {
        const ns = parseNsLink(r.value);
        if (ns && ns.type === link.type) map[ns.type] = ns.inum;
        else failed = true;
      } else if (r.kind === 'denied') {
        failed = true;
      } else if (r.kind === 'other') {
        error = r;
      }
      // 'gone': ENOENT is normal for zombies (all but pid and user are released at exit).
    });
    return error === undefined ? { map, failed } : { map, failed, error };
  }

  private note(pid: number, file: string, r: { kind: string; code?: string }): void {
    if (r.kind === 'other') this.logger.warn({ pid, file, code: r.code }, 'unexpected error reading /proc');
    else this.logger.debug({ pid, file, code: r.code }, 'file unreadable');
  }
}
