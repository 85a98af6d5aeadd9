/**
 * NamespaceSource over /proc: namespaces are found through the /proc/PID/ns/* links of every
 * process and through nsfs bind mounts listed in /proc/self/mountinfo; a handle is an open
 * descriptor on the nsfs file, which keeps the namespace alive until closed.
 */
import { closeSync, fstatSync, open as openCb } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { errnoCode, tryLoadNative, type NativeHelper } from './native.js';
import { CLONE_FLAG_TO_NS_TYPE, NS_LINKS, classifyProcError, parseMountinfoNsfs, parseNsLink } from './parse.js';
import { closeQuietly } from '../util/fd.js';
import { mapLimit } from '../util/map-limit.js';
import {
  HostReadError,
  NS_TYPES,
  type NamespaceHandle,
  type NamespaceInfo,
  type NamespaceRef,
  type NamespaceSource,
  type NsRef,
  type NsType,
} from './types.js';

const openFd = promisify(openCb);

export interface ProcNamespaceSourceOptions {
  logger: Logger;
  /** Default '/proc'. */
  procRoot?: string;
  /** Default: the built helper if present, else null (then nsId, owner and parent are null). */
  native?: NativeHelper | null;
  /** Processes scanned at once by list(). Default 16. */
  concurrency?: number;
  /** Also report nsfs bind mounts found in PROCROOT/self/mountinfo. Default true. */
  includeMounts?: boolean;
}

export { mapLimit } from '../util/map-limit.js';

/** Told when the source starts and stops holding a namespace (its first handle opens, its last closes). */
export interface NamespaceHoldObserver {
  held(info: NamespaceInfo, fd: number): void;
  released(type: NsType, inum: number): void;
}

interface Found {
  type: NsType;
  inum: number;
  paths: string[];
}

const key = (type: NsType, inum: number): string => `${type}:${inum}`;
const typeOrder = new Map<NsType, number>(NS_TYPES.map((t, i) => [t, i]));

/** Closes descriptors of handles that were dropped without close(). */
const leaked = new FinalizationRegistry<number>(closeQuietly);

export class ProcNamespaceHandle implements NamespaceHandle {
  private fdValue: number;

  constructor(
    readonly info: NamespaceInfo,
    fd: number,
    private readonly onClose: (h: ProcNamespaceHandle) => void,
  ) {
    this.fdValue = fd;
    leaked.register(this, fd, this);
  }

  /** The held nsfs descriptor (-1 once closed). For setns(2) and tests; do not close it yourself. */
  get fd(): number {
    return this.fdValue;
  }

  get closed(): boolean {
    return this.fdValue < 0;
  }

  close(): void {
    if (this.fdValue < 0) return;
    const fd = this.fdValue;
    this.fdValue = -1;
    leaked.unregister(this);
    this.onClose(this);
    closeSync(fd);
  }
}

export class ProcNamespaceSource implements NamespaceSource {
  private readonly logger: Logger;
  private readonly procRoot: string;
  private readonly native: NativeHelper | null;
  private readonly concurrency: number;
  private readonly includeMounts: boolean;
  /** Paths that named each namespace at the last scan. */
  private seen = new Map<string, Found>();
  private readonly held = new Map<string, Set<ProcNamespaceHandle>>();
  private nsIdSupported = true;
  /** Processes whose open descriptors also name namespaces (the keeper's copies). */
  private holders: number[] = [];
  private observer: NamespaceHoldObserver | null = null;

  constructor(options: ProcNamespaceSourceOptions) {
    this.logger = options.logger;
    this.procRoot = options.procRoot ?? '/proc';
    this.native = options.native === undefined ? tryLoadNative() : options.native;
    this.concurrency = options.concurrency ?? 16;
    this.includeMounts = options.includeMounts ?? true;
    if (!this.native) {
      this.logger.warn('handlefs native helper not built: namespace ids, owners and parents are unavailable');
    }
  }

  /**
   * Serving under a keeper: report every hold to it, and find namespaces through the descriptors
   * of `holders` (the keeper's copies, which a successor re-opens to take over).
   */
  keepWith(observer: NamespaceHoldObserver, holders: readonly number[]): void {
    this.observer = observer;
    this.holders = [...holders];
  }

  async list(): Promise<NamespaceRef[]> {
    const found = await this.scan(null);
    this.seen = found;
    const refs: NamespaceRef[] = [...found.values()].map(({ type, inum }) => ({ type, inum }));
    return refs.sort((a, b) => typeOrder.get(a.type)! - typeOrder.get(b.type)! || a.inum - b.inum);
  }

  async open(type: NsType, inum: number, nsId?: string): Promise<NamespaceHandle | null> {
    const h = await this.find(type, inum, (path) => this.tryOpen(path, type, inum, nsId, true));
    return h === null ? null : h.handle;
  }

  async check(type: NsType, inum: number, nsId?: string): Promise<NamespaceInfo | null> {
    const h = await this.find(type, inum, (path) => this.tryOpen(path, type, inum, nsId, false));
    return h === null ? null : h.info;
  }

  /** Tries the paths that may reach (type, inum): our holds, where it was last seen, then a new scan. */
  private async find<T>(type: NsType, inum: number, attempt: (path: string) => Promise<T | null>): Promise<T | null> {
    const k = key(type, inum);
    const tried = new Set<string>();
    const tryPaths = async (paths: Iterable<string>): Promise<T | null> => {
      for (const path of paths) {
        if (tried.has(path)) continue;
        tried.add(path);
        const h = await attempt(path);
        if (h) return h;
      }
      return null;
    };
    const heldPaths = [...(this.held.get(k) ?? [])].map((h) => `${this.procRoot}/self/fd/${h.fd}`);
    const first = await tryPaths([...heldPaths, ...(this.seen.get(k)?.paths ?? [])]);
    if (first) return first;
    // Not where it was last seen: look again, for this type only.
    const found = await this.scan(type);
    for (const [fk, f] of found) this.seen.set(fk, f);
    return tryPaths(found.get(k)?.paths ?? []);
  }

  /** Whether a handle of this source holds (type, inum) open now. */
  holds(type: NsType, inum: number): boolean {
    return (this.held.get(key(type, inum))?.size ?? 0) > 0;
  }

  /** Namespaces currently held open by handles of this source. */
  get heldCount(): number {
    let n = 0;
    for (const s of this.held.values()) n += s.size;
    return n;
  }

  private async scan(only: NsType | null): Promise<Map<string, Found>> {
    const found = new Map<string, Found>();
    const add = (type: NsType, inum: number, path: string): void => {
      const k = key(type, inum);
      const f = found.get(k);
      if (f) f.paths.push(path);
      else found.set(k, { type, inum, paths: [path] });
    };
    const links = NS_LINKS.filter((l) => only === null || l.type === only);
    let names: string[];
    try {
      names = await readdir(this.procRoot);
    } catch (err) {
      this.logger.error({ err, procRoot: this.procRoot }, 'cannot list processes');
      throw err;
    }
    const pids = names.filter((n) => /^[1-9]\d*$/.test(n)).sort((a, b) => Number(a) - Number(b));
    await mapLimit(pids, this.concurrency, async (pid) => {
      for (const l of links) {
        const path = `${this.procRoot}/${pid}/ns/${l.link}`;
        let target: string;
        try {
          target = await readlink(path);
        } catch {
          // ENOENT: vanished, or a zombie (which keeps only pid and user); EACCES: pid 1 here.
          continue;
        }
        const ns = parseNsLink(target);
        if (ns && ns.type === l.type) add(ns.type, ns.inum, path);
      }
    });
    await mapLimit(this.holders, this.concurrency, async (pid) => {
      let fds: string[];
      try {
        fds = await readdir(`${this.procRoot}/${pid}/fd`);
      } catch {
        return; // the holder is gone
      }
      for (const fd of fds) {
        const path = `${this.procRoot}/${pid}/fd/${fd}`;
        const ns = parseNsLink(await readlink(path).catch(() => ''));
        if (ns && (only === null || ns.type === only)) add(ns.type, ns.inum, path);
      }
    });
    if (this.includeMounts) {
      try {
        const text = await readFile(`${this.procRoot}/self/mountinfo`, 'utf8');
        for (const m of parseMountinfoNsfs(text)) {
          if (only === null || m.type === only) add(m.type, m.inum, m.mountPoint);
        }
      } catch (err) {
        this.logger.debug({ err }, 'mountinfo unreadable; nsfs bind mounts not listed');
      }
    }
    return found;
  }

  private async tryOpen(
    path: string,
    type: NsType,
    inum: number,
    nsId: string | undefined,
    hold: boolean,
  ): Promise<{ info: NamespaceInfo; handle: ProcNamespaceHandle | null } | null> {
    let fd: number;
    try {
      fd = await openFd(path, 'r');
    } catch (err) {
      // Gone or not ours to open: try the next path. Anything else (EMFILE, ...) is an error,
      // never evidence that the namespace is gone.
      if (classifyProcError(err) === 'other') throw new HostReadError(`opening ${path}`, err);
      this.logger.debug({ path, code: errnoCode(err) }, 'namespace path not openable');
      return null;
    }
    let keep = false;
    try {
      const st = fstatSync(fd);
      if (st.ino !== inum) return null; // the link now names another namespace
      const actualType = this.nsType(fd);
      if (actualType !== null && actualType !== type) return null;
      const info = this.readInfo(fd, type, inum, st.dev);
      if (nsId !== undefined && info.nsId !== null && info.nsId !== nsId) return null; // inum reused
      if (!hold) return { info, handle: null };
      const handle = new ProcNamespaceHandle(info, fd, (h) => this.forget(h));
      const k = key(type, inum);
      let set = this.held.get(k);
      if (!set) this.held.set(k, (set = new Set()));
      set.add(handle);
      keep = true;
      if (set.size === 1) this.observer?.held(info, fd);
      return { info, handle };
    } catch (err) {
      this.logger.warn({ err, path }, 'reading an opened namespace failed');
      return null;
    } finally {
      if (!keep) closeSync(fd);
    }
  }

  private forget(h: ProcNamespaceHandle): void {
    const k = key(h.info.type, h.info.inum);
    const set = this.held.get(k);
    if (!set) return;
    set.delete(h);
    if (set.size > 0) return;
    this.held.delete(k);
    this.observer?.released(h.info.type, h.info.inum);
  }

  private nsType(fd: number): NsType | null {
    if (!this.native) return null;
    try {
      return CLONE_FLAG_TO_NS_TYPE.get(this.native.nsIoctl(fd, 'NS_GET_NSTYPE')) ?? null;
    } catch {
      return null;
    }
  }

  private readInfo(fd: number, type: NsType, inum: number, dev: number): NamespaceInfo {
    const info: NamespaceInfo = {
      type,
      inum,
      dev,
      nsId: this.nsId(fd, type),
      owner: this.related(fd, 'NS_GET_USERNS', 'user'),
    };
    if (type === 'pid' || type === 'user') return { ...info, parent: this.related(fd, 'NS_GET_PARENT', type) };
    return info;
  }

  /** NS_GET_ID, or NS_GET_MNTNS_ID for mount namespaces on kernels before 6.18. */
  private nsId(fd: number, type: NsType): string | null {
    const native = this.native;
    if (!native) return null;
    if (this.nsIdSupported) {
      try {
        return native.nsIoctl(fd, 'NS_GET_ID').toString();
      } catch (err) {
        if (errnoCode(err) !== 'ENOTTY') {
          this.logger.debug({ code: errnoCode(err) }, 'NS_GET_ID failed');
          return null;
        }
        this.nsIdSupported = false;
        this.logger.info('kernel lacks NS_GET_ID (before 6.18): namespace ids unavailable except for mnt');
      }
    }
    if (type !== 'mnt') return null;
    try {
      return native.nsIoctl(fd, 'NS_GET_MNTNS_ID').toString();
    } catch {
      return null;
    }
  }

  /** The namespace NS_GET_USERNS / NS_GET_PARENT leads to; null at the top (EPERM) or if unsupported. */
  private related(fd: number, op: 'NS_GET_USERNS' | 'NS_GET_PARENT', type: NsType): NsRef | null {
    const native = this.native;
    if (!native) return null;
    let other: number;
    try {
      other = native.nsIoctl(fd, op);
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'EPERM' && code !== 'EINVAL') this.logger.debug({ op, code }, 'namespace ioctl failed');
      return null;
    }
    try {
      return { inum: fstatSync(other).ino, nsId: this.nsId(other, type) };
    } finally {
      closeSync(other);
    }
  }
}
