/**
 * Mounting and unmounting, mount-option parsing, stale-mount detection.
 *
 * As root we open /dev/fuse ourselves and run
 *   mount -i -t fuse.<subtype> -o fd=3,rootmode=40000,user_id=U,group_id=G,... <fsname> <mountpoint>
 * with the descriptor passed to mount(8) as its fd 3. Without root we run the setuid fusermount3
 * (Debian package fuse3) with one end of a socket pair as its fd 3 (`_FUSE_COMMFD=3`); it mounts
 * and hands the /dev/fuse descriptor back over the socket (SCM_RIGHTS), received by the FUSE
 * device helper because Node cannot receive descriptors; `fusermount3 -u` unmounts.
 *
 * No path leaves a dead mount behind: unmount() tries `umount`, then `umount -l` (for a user,
 * `fusermount3 -u`, then `-u -z`: unmountCommand); the session
 * unmounts when it ends for any reason; and a process 'exit' hook closes the device and lazily
 * unmounts whatever is still mounted (uncaught exceptions included). Only SIGKILL can leave a
 * stale mount, and inspectMountpoint() recognises one (stat → ENOTCONN) and says how to fix it.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { getSystemErrorName } from 'node:util';
import { fuseDeviceAddon, type FuseDeviceAddon } from './device-addon.js';
import { DevFuseChannel, type DevFuseChannelOptions, type ReadMechanism } from './device.js';
import { closeQuietly } from '../util/fd.js';
import { FuseSession, type SessionOptions } from './session.js';
import type { LowLevelFileSystem } from './types.js';

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

export interface MountOptions {
  /** Let users other than the mounting one access the mount. */
  allowOther: boolean;
  /** Let the kernel check permissions from the mode bits (instead of the filesystem). */
  defaultPermissions: boolean;
  /** Seconds the kernel may cache names (passed to the layer above). */
  entryTimeout: number;
  /** Seconds the kernel may cache attributes (passed to the layer above). */
  attrTimeout: number;
  /** Mount source shown in /proc/mounts. */
  fsname: string;
  /** Filesystem type is `fuse.<subtype>`. */
  subtype: string;
  /** Always true: this layer serves read-only trees. Accepted for compatibility. */
  readonly ro: true;
  /** Log every request and reply (debug level). */
  debug: boolean;
  /** Largest READ the kernel sends (bytes); undefined = kernel default. */
  maxRead: number | undefined;
  /**
   * Generic mount flags the kernel applies to the mount (MS_NOEXEC, MS_NOATIME, ...), as mount(8)
   * spells them, passed on to mount(8) / fusermount3: see MOUNT_FLAGS. nosuid, nodev and ro are
   * always set.
   */
  flags: readonly MountFlag[];
}

/**
 * mount(8)'s generic flags: what each does here. `pass` flags are given to the kernel (MS_*) and
 * show in /proc/self/mountinfo; `reset` ones undo their `pass` partner (the default); `always`
 * ones are on whatever is said; `refuse` ones ask for what this filesystem never does.
 */
export const MOUNT_FLAGS = Object.freeze({
  noexec: { rule: 'pass' },
  noatime: { rule: 'pass' },
  nodiratime: { rule: 'pass' },
  relatime: { rule: 'pass' },
  strictatime: { rule: 'pass' },
  lazytime: { rule: 'pass' },
  sync: { rule: 'pass' },
  dirsync: { rule: 'pass' },
  exec: { rule: 'reset', undoes: 'noexec' },
  atime: { rule: 'reset', undoes: 'noatime' },
  diratime: { rule: 'reset', undoes: 'nodiratime' },
  norelatime: { rule: 'reset', undoes: 'relatime' },
  nostrictatime: { rule: 'reset', undoes: 'strictatime' },
  nolazytime: { rule: 'reset', undoes: 'lazytime' },
  async: { rule: 'reset', undoes: 'sync' },
  nosuid: { rule: 'always' },
  nodev: { rule: 'always' },
  suid: { rule: 'refuse', why: 'handlefs always mounts nosuid (its files are never executables)' },
  dev: { rule: 'refuse', why: 'handlefs always mounts nodev (it serves no device files)' },
} as const satisfies Record<string, { rule: 'pass' } | { rule: 'reset'; undoes: string } | { rule: 'always' } | { rule: 'refuse'; why: string }>);

/** A flag handlefs passes to the kernel. */
export type MountFlag = { [K in keyof typeof MOUNT_FLAGS]: (typeof MOUNT_FLAGS)[K]['rule'] extends 'pass' ? K : never }[keyof typeof MOUNT_FLAGS];

function isGenericFlag(name: string): name is keyof typeof MOUNT_FLAGS {
  return Object.prototype.hasOwnProperty.call(MOUNT_FLAGS, name);
}

/** Applies one generic flag to the set of flags to pass (throws for refused ones). */
function applyFlag(flags: Set<MountFlag>, name: keyof typeof MOUNT_FLAGS): void {
  const f = MOUNT_FLAGS[name];
  switch (f.rule) {
    case 'pass':
      flags.add(name as MountFlag);
      break;
    case 'reset':
      flags.delete(f.undoes);
      break;
    case 'always':
      break;
    case 'refuse':
      throw new MountOptionError(`mount option ${name}: ${f.why}`, name);
  }
}

export const DEFAULT_MOUNT_OPTIONS: Readonly<MountOptions> = Object.freeze({
  allowOther: false,
  defaultPermissions: false,
  entryTimeout: 1,
  attrTimeout: 1,
  fsname: 'handlefs',
  subtype: 'handlefs',
  ro: true,
  debug: false,
  maxRead: undefined,
  flags: Object.freeze([]) as readonly MountFlag[],
});

export class MountOptionError extends Error {
  override readonly name = 'MountOptionError';
  constructor(
    message: string,
    readonly option: string,
  ) {
    super(message);
  }
}

const FLAG_OPTIONS = ['allow_other', 'default_permissions', 'ro', 'debug'] as const;
const VALUE_OPTIONS = ['entry_timeout', 'attr_timeout', 'fsname', 'subtype', 'max_read'] as const;
const KNOWN = [...FLAG_OPTIONS, ...VALUE_OPTIONS, ...Object.keys(MOUNT_FLAGS)].join(', ');
/** The -o options this layer parses: flags, options that take a value, and the kernel's mount flags (some refused, with a reason). */
export const MOUNT_OPTION_NAMES = { flags: FLAG_OPTIONS, values: VALUE_OPTIONS, kernelFlags: Object.keys(MOUNT_FLAGS) } as const;

function parseSeconds(opt: string, v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) {
    throw new MountOptionError(`mount option ${opt}: "${v}" is not a non-negative number of seconds`, opt);
  }
  return n;
}

function checkFsname(v: string): string {
  if (v === '' || /[\s\0,]/.test(v) || v.length > 255) {
    throw new MountOptionError(`mount option fsname: "${v}" must be 1-255 characters without whitespace or commas`, 'fsname');
  }
  return v;
}

function checkSubtype(v: string): string {
  if (!/^[A-Za-z0-9_+-]{1,64}$/.test(v)) {
    throw new MountOptionError(`mount option subtype: "${v}" may only contain letters, digits, "_", "+" and "-"`, 'subtype');
  }
  return v;
}

function checkMaxRead(v: number, raw: string): number {
  if (!Number.isInteger(v) || v < 4096 || v > 0x7fffffff) {
    throw new MountOptionError(`mount option max_read: "${raw}" must be an integer >= 4096`, 'max_read');
  }
  return v;
}

/**
 * Parses `-o` style options: "allow_other,entry_timeout=0.5,fsname=x", a list of such items, or an
 * object of already-typed fields (validated the same way). Unknown options are an error naming it.
 */
export function parseMountOptions(spec: string | readonly string[] | Partial<MountOptions> = ''): MountOptions {
  const o: MountOptions = { ...DEFAULT_MOUNT_OPTIONS };
  if (typeof spec === 'object' && !Array.isArray(spec)) {
    const p = spec as Partial<MountOptions>;
    for (const key of Object.keys(p)) {
      if (!(key in DEFAULT_MOUNT_OPTIONS)) throw new MountOptionError(`unknown mount option "${key}"`, key);
    }
    if (p.allowOther !== undefined) o.allowOther = !!p.allowOther;
    if (p.defaultPermissions !== undefined) o.defaultPermissions = !!p.defaultPermissions;
    if (p.debug !== undefined) o.debug = !!p.debug;
    if (p.ro !== undefined && (p.ro as boolean) !== true) {
      throw new MountOptionError('mount option ro: this filesystem is always read-only', 'ro');
    }
    if (p.entryTimeout !== undefined) o.entryTimeout = parseSeconds('entry_timeout', String(p.entryTimeout));
    if (p.attrTimeout !== undefined) o.attrTimeout = parseSeconds('attr_timeout', String(p.attrTimeout));
    if (p.fsname !== undefined) o.fsname = checkFsname(p.fsname);
    if (p.subtype !== undefined) o.subtype = checkSubtype(p.subtype);
    if (p.maxRead !== undefined) o.maxRead = checkMaxRead(p.maxRead, String(p.maxRead));
    if (p.flags !== undefined) {
      const flags = new Set<MountFlag>();
      for (const f of p.flags) {
        if (!isGenericFlag(f)) throw new MountOptionError(`unknown mount flag "${String(f)}"`, String(f));
        applyFlag(flags, f);
      }
      o.flags = [...flags].sort();
    }
    return o;
  }
  const items = (typeof spec === 'string' ? [spec] : spec).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '');
  const flags = new Set<MountFlag>();
  for (const item of items) {
    if (isGenericFlag(item)) {
      applyFlag(flags, item);
      continue;
    }
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    const value = eq < 0 ? undefined : item.slice(eq + 1);
    if ((FLAG_OPTIONS as readonly string[]).includes(key)) {
      if (value !== undefined) throw new MountOptionError(`mount option ${key} takes no value (got "${item}")`, key);
    } else if ((VALUE_OPTIONS as readonly string[]).includes(key)) {
      if (value === undefined) throw new MountOptionError(`mount option ${key} needs a value (${key}=...)`, key);
    } else {
      throw new MountOptionError(`unknown mount option "${key}" (known: ${KNOWN})`, key);
    }
    switch (key) {
      case 'allow_other':
        o.allowOther = true;
        break;
      case 'default_permissions':
        o.defaultPermissions = true;
        break;
      case 'ro':
        break;
      case 'debug':
        o.debug = true;
        break;
      case 'entry_timeout':
        o.entryTimeout = parseSeconds(key, value!);
        break;
      case 'attr_timeout':
        o.attrTimeout = parseSeconds(key, value!);
        break;
      case 'fsname':
        o.fsname = checkFsname(value!);
        break;
      case 'subtype':
        o.subtype = checkSubtype(value!);
        break;
      case 'max_read':
        o.maxRead = checkMaxRead(Number(value), value!);
        break;
    }
  }
  o.flags = [...flags].sort();
  return o;
}

/** The -o string given to mount(8) (and so to the kernel). */
export function kernelMountOptions(o: MountOptions, fd: number, uid: number, gid: number): string {
  const parts = [`fd=${fd}`, 'rootmode=40000', `user_id=${uid}`, `group_id=${gid}`];
  if (o.allowOther) parts.push('allow_other');
  if (o.defaultPermissions) parts.push('default_permissions');
  if (o.maxRead !== undefined) parts.push(`max_read=${o.maxRead}`);
  parts.push('ro', 'nosuid', 'nodev', ...o.flags);
  return parts.join(',');
}

// ---------------------------------------------------------------------------------------------
// Errors and mountpoint inspection
// ---------------------------------------------------------------------------------------------

export class MountError extends Error {
  override name = 'MountError';
  constructor(
    message: string,
    readonly code: string,
    readonly mountpoint: string,
  ) {
    super(message);
  }
}

export class StaleMountError extends MountError {
  override name = 'StaleMountError';
  /** Shell commands that remove the stale mount. */
  readonly fix: string[];
  constructor(mountpoint: string, fstype?: string) {
    const fix = [`umount -l ${shellQuote(mountpoint)}`, `fusermount3 -u ${shellQuote(mountpoint)}`];
    super(
      `${mountpoint} is a stale FUSE mount${fstype ? ` (${fstype})` : ''}: stat() fails with ENOTCONN ` +
        `(transport endpoint is not connected; its server died). Remove it with \`${fix[0]}\` ` +
        `(or \`${fix[1]}\`), or mount with cleanStale.`,
      'ENOTCONN',
      mountpoint,
    );
    this.fix = fix;
  }
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface MountInfoEntry {
  mountpoint: string;
  fstype: string;
  source: string;
  options: string;
  /** st_dev of the filesystem as "major:minor". */
  device: string;
  /** The path inside the filesystem that is mounted here ("/" for the whole of it; a bind mount of one file names it). */
  root: string;
}

/**
 * A mount's root without the " //deleted" mark mountinfo gives a file whose name the kernel has
 * since dropped (a handle whose name was invalidated): a bind mount of it still holds that file.
 */
export function withoutDeletedMark(root: string): string {
  return root.replace(/\/\/deleted$/, '');
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mounts visible to this process (from /proc/self/mountinfo). */
export function readMountInfo(): MountInfoEntry[] {
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const out: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const a = line.slice(0, sep).split(' ');
    const b = line.slice(sep + 3).split(' ');
    out.push({
      mountpoint: unescapeMountinfo(a[4] ?? ''),
      fstype: b[0] ?? '',
      source: unescapeMountinfo(b[1] ?? ''),
      options: a[5] ?? '',
      device: a[2] ?? '',
      root: unescapeMountinfo(a[3] ?? ''),
    });
  }
  return out;
}

/** The topmost mount at exactly `mountpoint` (an absolute, resolved path), if any. */
export function mountAt(mountpoint: string): MountInfoEntry | undefined {
  const all = readMountInfo();
  for (let i = all.length - 1; i >= 0; i--) if (all[i]!.mountpoint === mountpoint) return all[i];
  return undefined;
}

export type MountpointState =
  | { state: 'ok'; path: string }
  | { state: 'missing'; path: string }
  | { state: 'not-a-directory'; path: string }
  | { state: 'stale'; path: string; fstype?: string; fix: string[] }
  | { state: 'mounted'; path: string; fstype: string; source: string }
  | { state: 'unresponsive'; path: string; fstype?: string }
  | { state: 'error'; path: string; code: string };

async function statWithTimeout(p: string, ms: number): Promise<fs.Stats | NodeJS.ErrnoException | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<'timeout'>((r) => {
    timer = setTimeout(() => r('timeout'), ms);
  });
  try {
    return await Promise.race([fs.promises.stat(p).catch((e: NodeJS.ErrnoException) => e), t]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * What is at `mountpoint`: usable directory, missing, a stale FUSE mount (ENOTCONN), something
 * mounted already, or a mount whose server does not answer. Never hangs (stat has a timeout and
 * runs on the thread pool, so it is safe even on our own live mount).
 */
export async function inspectMountpoint(mountpoint: string, timeoutMs = 2000): Promise<MountpointState> {
  const p = path.resolve(mountpoint);
  const st = await statWithTimeout(p, timeoutMs);
  const m = mountAt(p);
  if (st === 'timeout') return { state: 'unresponsive', path: p, ...(m ? { fstype: m.fstype } : {}) };
  if (st instanceof Error) {
    if (st.code === 'ENOTCONN') {
      const e = new StaleMountError(p, m?.fstype);
      return { state: 'stale', path: p, ...(m ? { fstype: m.fstype } : {}), fix: e.fix };
    }
    if (st.code === 'ENOENT') return { state: 'missing', path: p };
    if (st.code === 'ENOTDIR') return { state: 'not-a-directory', path: p };
    return { state: 'error', path: p, code: st.code ?? 'EIO' };
  }
  if (!st.isDirectory()) return { state: 'not-a-directory', path: p };
  if (m) return { state: 'mounted', path: p, fstype: m.fstype, source: m.source };
  return { state: 'ok', path: p };
}

// ---------------------------------------------------------------------------------------------
// Running mount(8) / umount(8)
// ---------------------------------------------------------------------------------------------

interface CmdResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  timedOut: boolean;
}

function runCmd(cmd: string, args: string[], opts: { timeoutMs: number; fd?: number; env?: Record<string, string> }): Promise<CmdResult> {
  return new Promise((resolve) => {
    const stdio: Array<'ignore' | 'pipe' | number> = ['ignore', 'pipe', 'pipe'];
    if (opts.fd !== undefined) stdio.push(opts.fd);
    const child = spawn(cmd, args, { stdio, env: { ...process.env, ...opts.env, LC_ALL: 'C' } });
    let stderr = '';
    let timedOut = false;
    child.stdout?.on('data', () => undefined);
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, stderr: `${cmd}: ${err.message}`, timedOut: false });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr: stderr.trim(), timedOut });
    });
  });
}

/**
 * The command that unmounts `p`, lazily (detach now, finish when no longer busy) or not: as root
 * `umount -i -c` (-i: no umount.<type> helper; -c: umount never stats the mount it removes), otherwise the
 * user's route, `fusermount3 -u -q` (-z for lazy).
 */
export function unmountCommand(p: string, lazy: boolean): [string, string[]] {
  if (isRoot()) return ['umount', ['-i', '-c', ...(lazy ? ['-l'] : []), p]];
  return [findFusermount() ?? 'fusermount3', ['-u', ...(lazy ? ['-z'] : []), '-q', '--', p]];
}

/**
 * Unmounts `mountpoint`, and if that fails (busy, hung) detaches it lazily (see unmountCommand).
 * Resolves once nothing is mounted there; throws MountError if both failed.
 */
export async function unmount(mountpoint: string, logger?: Logger, timeoutMs = 10_000): Promise<void> {
  const p = path.resolve(mountpoint);
  if (!mountAt(p)) return;
  const [cmd, args] = unmountCommand(p, false);
  const r = await runCmd(cmd, args, { timeoutMs });
  if (r.code === 0 || !mountAt(p)) {
    logger?.info({ mountpoint: p }, 'unmounted');
    return;
  }
  const [lazyCmd, lazyArgs] = unmountCommand(p, true);
  logger?.warn({ mountpoint: p, stderr: r.stderr, timedOut: r.timedOut, cmd: [lazyCmd, ...lazyArgs].join(' ') }, `${cmd} failed; detaching lazily`);
  const l = await runCmd(lazyCmd, lazyArgs, { timeoutMs });
  if (l.code === 0 || !mountAt(p)) {
    logger?.info({ mountpoint: p }, 'unmounted (lazy)');
    return;
  }
  throw new MountError(`could not unmount ${p}: ${l.stderr || r.stderr}`, 'EBUSY', p);
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

let fusermountPath: string | null | undefined;
/** fusermount3 on PATH (or in /usr/bin, /bin), else undefined. */
export function findFusermount(): string | undefined {
  if (fusermountPath === undefined) {
    const dirs = [...(process.env['PATH'] ?? '').split(':').filter(Boolean), '/usr/bin', '/bin'];
    fusermountPath = dirs.map((d) => path.join(d, 'fusermount3')).find((f) => {
      try {
        fs.accessSync(f, fs.constants.X_OK);
        return true;
      } catch {
        return false;
      }
    }) ?? null;
  }
  return fusermountPath ?? undefined;
}

/** The -o string given to fusermount3, which adds fd, rootmode, user_id and group_id itself. */
export function userMountOptions(o: MountOptions): string {
  const parts = [`fsname=${o.fsname}`, `subtype=${o.subtype}`];
  if (o.allowOther) parts.push('allow_other');
  if (o.defaultPermissions) parts.push('default_permissions');
  if (o.maxRead !== undefined) parts.push(`max_read=${o.maxRead}`);
  parts.push('ro', 'nosuid', 'nodev', ...o.flags);
  return parts.join(',');
}

/** Removes a stale mount (umount -l; fusermount3 -u -z without root). */
export async function cleanStaleMount(mountpoint: string, logger?: Logger): Promise<void> {
  const p = path.resolve(mountpoint);
  logger?.warn({ mountpoint: p }, 'removing stale FUSE mount (lazy unmount)');
  const [cmd, args] = unmountCommand(p, true);
  const r = await runCmd(cmd, args, { timeoutMs: 10_000 });
  if (r.code !== 0 && mountAt(p)) {
    throw new MountError(`could not remove the stale mount at ${p}: ${r.stderr}`, 'EBUSY', p);
  }
}

// Last line of defence: whatever is still mounted when the process exits is detached.
const live = new Set<FuseMount>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const m of live) m.emergencyUnmount();
  });
}

export interface MountRequest {
  /** Remove a stale mount found at the mountpoint instead of failing (default false). */
  cleanStale?: boolean;
  /** Timeout for mount(8) (ms). */
  timeoutMs?: number;
}

/** A mounted /dev/fuse descriptor. The session reads it through createChannel(). */
export class FuseMount {
  private unmounting: Promise<void> | undefined;
  private fdOwnedByChannel = false;
  private channel: DevFuseChannel | undefined;
  private fdClosed = false;
  private done = false;

  constructor(
    readonly fd: number,
    readonly mountpoint: string,
    readonly options: MountOptions,
    private readonly logger: Logger,
  ) {
    live.add(this);
    installExitHook();
  }

  get mounted(): boolean {
    return !this.done && mountAt(this.mountpoint) !== undefined;
  }

  /** The channel on this mount's descriptor; it owns (and closes) the descriptor from now on. */
  createChannel(options: Omit<DevFuseChannelOptions, 'closeFd'> = {}): DevFuseChannel {
    if (this.fdOwnedByChannel || this.fdClosed) throw new Error('FuseMount: the descriptor was already taken');
    this.fdOwnedByChannel = true;
    this.channel = new DevFuseChannel(this.fd, this.logger, { ...options, closeFd: true });
    return this.channel;
  }

  /**
   * Gives the descriptor away (to a keeper that holds it for the mount's life): this object no
   * longer closes it or unmounts at process exit. Returns the descriptor.
   */
  handOver(): number {
    if (this.fdOwnedByChannel || this.fdClosed) throw new Error('FuseMount: the descriptor was already taken');
    this.fdOwnedByChannel = true;
    this.done = true;
    live.delete(this);
    return this.fd;
  }

  /** Unmount (idempotent; concurrent calls share one attempt). */
  unmount(): Promise<void> {
    this.unmounting ??= (async () => {
      try {
        await unmount(this.mountpoint, this.logger);
        this.done = true;
        live.delete(this);
      } finally {
        this.closeFdIfOurs();
        if (!this.done) this.unmounting = undefined; // allow a retry
      }
    })();
    return this.unmounting;
  }

  private closeFdIfOurs(): void {
    if (!this.fdOwnedByChannel && !this.fdClosed) {
      this.fdClosed = true;
      closeQuietly(this.fd);
    }
  }

  /** @internal Synchronous cleanup at process exit: abort the connection, detach the mount. */
  emergencyUnmount(): void {
    if (this.done) return;
    // Close the device (aborting the connection) unless it is closed already: its number may have
    // been reused by an unrelated file since.
    const stillOpen = this.fdOwnedByChannel ? this.channel !== undefined && !this.channel.closed : !this.fdClosed;
    if (stillOpen) {
      closeQuietly(this.fd);
    }
    if (mountAt(this.mountpoint)) {
      const [cmd, args] = unmountCommand(this.mountpoint, true);
      spawnSync(cmd, args, { stdio: 'ignore', timeout: 5000 });
    }
    this.done = true;
    live.delete(this);
  }
}

/**
 * Opens /dev/fuse and mounts it at `mountpoint`: as root through mount(8), otherwise through
 * fusermount3. Fails with StaleMountError when a dead FUSE mount is in the way (unless
 * cleanStale), MountError otherwise.
 */
export async function mountFuse(
  mountpoint: string,
  options: Partial<MountOptions> | string | readonly string[],
  logger: Logger,
  req: MountRequest = {},
): Promise<FuseMount> {
  const opts = parseMountOptions(options as Partial<MountOptions>);
  const p = path.resolve(mountpoint);
  const uid = process.getuid?.() ?? -1;
  const gid = process.getgid?.() ?? -1;
  let user: { fusermount: string; addon: FuseDeviceAddon } | undefined;
  if (uid !== 0) {
    const fusermount = findFusermount();
    const addon = fuseDeviceAddon.tryLoad();
    if (!fusermount || !addon) {
      const missing = !fusermount
        ? 'fusermount3 is not installed (Debian package fuse3)'
        : 'receiving the descriptor it passes back needs the FUSE device helper, which is not built (npm run build:native)';
      throw new MountError(`mounting ${p} as uid ${uid} (not root) goes through fusermount3, but ${missing}. Or run as root.`, 'EPERM', p);
    }
    user = { fusermount, addon };
  }
  if (!fs.existsSync('/dev/fuse')) {
    throw new MountError('/dev/fuse does not exist (load the fuse module: modprobe fuse)', 'ENOENT', p);
  }

  let state = await inspectMountpoint(p);
  if (state.state === 'stale') {
    if (!req.cleanStale) throw new StaleMountError(p, state.fstype);
    await cleanStaleMount(p, logger);
    state = await inspectMountpoint(p);
  }
  switch (state.state) {
    case 'ok':
      break;
    case 'missing':
      throw new MountError(`mountpoint ${p} does not exist`, 'ENOENT', p);
    case 'not-a-directory':
      throw new MountError(`mountpoint ${p} is not a directory`, 'ENOTDIR', p);
    case 'mounted':
      throw new MountError(`${p} already has a mount (${state.fstype} from ${state.source}); unmount it first`, 'EBUSY', p);
    case 'unresponsive':
      throw new MountError(`${p} does not answer stat() (a hung mount?); try \`umount -l ${shellQuote(p)}\``, 'ETIMEDOUT', p);
    case 'stale':
      throw new StaleMountError(p, state.fstype);
    case 'error':
      throw new MountError(`cannot use mountpoint ${p}: ${state.code}`, state.code, p);
  }

  if (user) {
    checkDeviceAccess(uid, p);
    const fd = await mountAsUser(user.fusermount, user.addon, opts, p, req.timeoutMs ?? 15_000, logger);
    logger.info({ mountpoint: p, type: `fuse.${opts.subtype}`, source: opts.fsname, via: 'fusermount3' }, 'mounted');
    return new FuseMount(fd, p, opts, logger);
  }
  const fd = fs.openSync('/dev/fuse', fs.constants.O_RDWR);
  const args = ['-i', '-t', `fuse.${opts.subtype}`, '-o', kernelMountOptions(opts, 3, uid, gid), opts.fsname, p];
  logger.debug({ cmd: ['mount', ...args].join(' ') }, 'mounting');
  const r = await runCmd('mount', args, { timeoutMs: req.timeoutMs ?? 15_000, fd });
  if (r.code !== 0) {
    // A mount(8) that was killed may still have mounted: never leave it behind.
    if (mountAt(p)) await unmount(p, logger).catch(() => undefined);
    fs.closeSync(fd);
    throw new MountError(`mount failed at ${p}: ${r.timedOut ? 'timed out' : r.stderr || `exit ${r.code}`}`, 'EMOUNT', p);
  }
  logger.info({ mountpoint: p, type: `fuse.${opts.subtype}`, source: opts.fsname }, 'mounted');
  return new FuseMount(fd, p, opts, logger);
}

export interface ServeOptions extends Omit<SessionOptions, 'unmount' | 'entryTimeout' | 'attrTimeout' | 'debug'> {
  cleanStale?: boolean;
  /** Force how /dev/fuse is read (benchmarks, tests); default: the best available. */
  reader?: ReadMechanism;
}

/**
 * Mounts `filesystem` at `mountpoint` and starts serving it. `session.run()` resolves when it has
 * ended and the mountpoint is clean again; `session.stop()` unmounts. Signals (SIGINT/SIGTERM) stop
 * it unless handleSignals is false.
 */
export async function serve(
  filesystem: LowLevelFileSystem,
  mountpoint: string,
  options: Partial<MountOptions> | string | readonly string[],
  logger: Logger,
  serveOptions: ServeOptions = {},
): Promise<FuseSession> {
  const opts = parseMountOptions(options as Partial<MountOptions>);
  const { cleanStale, reader, ...sessionOpts } = serveOptions;
  const m = await mountFuse(mountpoint, opts, logger, { cleanStale: cleanStale ?? false });
  const channel = m.createChannel(reader ? { mechanism: reader } : {});
  let session: FuseSession;
  try {
    session = new FuseSession(filesystem, channel, logger, {
      handleSignals: true,
      ...sessionOpts,
      entryTimeout: opts.entryTimeout,
      attrTimeout: opts.attrTimeout,
      debug: opts.debug,
      unmount: () => m.unmount(),
    });
  } catch (err) {
    channel.close();
    await m.unmount();
    throw err;
  }
  void session.run().catch(() => undefined);
  return session;
}

/**
 * fusermount3's protocol: it gets one end of a socket pair as fd 3 (named by _FUSE_COMMFD), opens
 * /dev/fuse, mounts, sends the descriptor over the socket and exits; the descriptor waits in the
 * socket until we receive it.
 */
async function mountAsUser(fusermount: string, addon: FuseDeviceAddon, opts: MountOptions, p: string, timeoutMs: number, logger: Logger): Promise<number> {
  const [ours, theirs] = addon.socketpair();
  try {
    const args = ['-o', userMountOptions(opts), '--', p];
    logger.debug({ cmd: [fusermount, ...args].join(' ') }, 'mounting');
    const r = await runCmd(fusermount, args, { timeoutMs, fd: theirs, env: { _FUSE_COMMFD: '3' } });
    const fd = r.code === 0 ? addon.recvFd(ours) : -1;
    if (fd >= 0) return fd;
    if (mountAt(p)) await unmount(p, logger).catch(() => undefined);
    if (r.code !== 0) {
      throw new MountError(`fusermount3 failed at ${p}: ${r.timedOut ? 'timed out' : r.stderr || `exit ${r.code}`}`, 'EMOUNT', p);
    }
    throw new MountError(`fusermount3 mounted ${p} but passed no descriptor back (${getSystemErrorName(fd)})`, 'EMOUNT', p);
  } finally {
    closeQuietly(ours);
    closeQuietly(theirs);
  }
}

/** fusermount3 opens /dev/fuse as the calling user: say so when the user cannot. */
function checkDeviceAccess(uid: number, p: string): void {
  try {
    fs.accessSync('/dev/fuse', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    const mode = (fs.statSync('/dev/fuse').mode & 0o777).toString(8).padStart(4, '0');
    throw new MountError(
      `/dev/fuse is not readable and writable by uid ${uid} (mode ${mode}), and fusermount3 opens it as the calling user. ` +
        'Standard systems make it 0666 (udev); here: chmod 0666 /dev/fuse as root, or mount as root.',
      'EACCES',
      p,
    );
  }
}
