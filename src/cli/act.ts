/**
 * The commands that act through handles: exec, bind, kill, wait. A TARGET is any path that
 * resolves to a handle file (in the mount, by-ino/, or a bind mount of a handle elsewhere): its
 * st_dev names the mount (found in /proc/self/mountinfo), its st_ino is the handle number, and the
 * request goes to that mount's service over the control socket, which judges the caller.
 *
 * Entering and binding use the nsfs descriptor the service holds: the service names it as
 * /proc/<service pid>/fd/N; this process opens it (open(2) follows that link only for a caller
 * with ptrace access to the service: root), checks that it is the namespace asked for (inode
 * number and kernel id), and passes it to nsenter(1) or mount(8) as an inherited descriptor.
 * setns(2) cannot run in Node itself: a multi-threaded process cannot enter a user or mount
 * namespace.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { readMountInfo } from '../fuse/mount.js';
import { controlSocketPath, ControlRefusal, mountpointOfDevice, requestControl, type ControlRequest } from '../service/control.js';
import type { NamespacePath } from '../service/control-ops.js';
import { tryLoadNative } from '../sources/native.js';
import type { ProcessEnding } from '../sources/types.js';
import { signalName, signalNumber } from './args.js';
import { CliError, EXIT } from './exit-codes.js';
import { refusalError } from './ask.js';

/** A handle file: the mount that serves it and its number. */
export interface HandleTarget {
  readonly given: string;
  readonly mountpoint: string;
  readonly ino: number;
}

/** "major:minor" of a st_dev, as mountinfo writes it (the kernel's new_encode_dev split). */
export function devString(dev: bigint): string {
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return `${major}:${minor}`;
}

/** Resolves TARGET to its handle, or undefined if it is not a handle file of a handlefs mount. */
export function findHandle(given: string): HandleTarget | undefined {
  let st: fs.BigIntStats;
  try {
    st = fs.statSync(given, { bigint: true });
  } catch {
    return undefined;
  }
  if (!st.isFile()) return undefined;
  const dev = devString(st.dev);
  const mounts = readMountInfo().filter((m) => m.device === dev && m.fstype.startsWith('fuse'));
  const own = mounts.find((m) => m.root === '/' && fs.existsSync(controlSocketPath(m.mountpoint)));
  if (own !== undefined) return { given, mountpoint: own.mountpoint, ino: Number(st.ino) };
  // Detached with `umount --lazy` but still served for bind mounts of its handles: the keeper
  // recorded which mountpoint's service serves this device.
  const recorded = mounts.length > 0 ? mountpointOfDevice(dev) : undefined;
  return recorded !== undefined && fs.existsSync(controlSocketPath(recorded)) ? { given, mountpoint: recorded, ino: Number(st.ino) } : undefined;
}

function requireHandle(given: string): HandleTarget {
  const h = findHandle(given);
  if (h === undefined) {
    const why = fs.existsSync(given) ? 'is not a handle file of a running handlefs mount' : 'does not exist';
    throw new CliError(`${given} ${why}`, EXIT.notAHandle, 'a TARGET is MNT/pid/<pid>, MNT/ns/<type>/<inum>, MNT/by-ino/<ino> or a bind mount of one');
  }
  return h;
}

async function ask<T>(target: HandleTarget, request: ControlRequest, timeoutMs = 5000): Promise<T> {
  try {
    return await requestControl<T>(target.mountpoint, request, timeoutMs);
  } catch (e) {
    if (e instanceof ControlRefusal) throw refusalError(target.given, e);
    throw new CliError(`no handlefs service answers for ${target.mountpoint}: ${(e as Error).message}`, EXIT.serviceUnreachable);
  }
}

/** How long a wait goes on asking after its service stopped answering (a crash or restart takes well under this). */
const WAIT_RECONNECT_MS = 30_000;

/**
 * A request that may take as long as it must (a wait), across a crash or restart of the serving
 * process: when the service stops answering (its connection ends or is refused) the request is
 * asked again of its successor, for up to WAIT_RECONNECT_MS without an answer. A refusal is final.
 */
async function askAcrossRestarts<T>(target: HandleTarget, request: ControlRequest): Promise<T> {
  let since: number | undefined;
  for (;;) {
    const asked = Date.now();
    try {
      return await requestControl<T>(target.mountpoint, request, 0);
    } catch (e) {
      if (e instanceof ControlRefusal) throw refusalError(target.given, e);
      // An answer that took long was a live connection: the silence starts now.
      if (since === undefined || Date.now() - asked > 1000) since = Date.now();
      if (Date.now() - since >= WAIT_RECONNECT_MS || !fs.existsSync(controlSocketPath(target.mountpoint))) {
        throw new CliError(`no handlefs service answers for ${target.mountpoint}: ${(e as Error).message}`, EXIT.serviceUnreachable);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** nsenter's option for each namespace type. */
const NSENTER_OPTION: Record<string, string> = {
  mnt: '--mount',
  uts: '--uts',
  ipc: '--ipc',
  net: '--net',
  pid: '--pid',
  cgroup: '--cgroup',
  user: '--user',
  time: '--time',
};

/**
 * Opens the service's descriptor of the namespace and checks it is that namespace (the service may
 * have closed and reused the number meanwhile); null if it is not.
 */
function openNamespace(ns: NamespacePath): number | null {
  let fd: number;
  try {
    fd = fs.openSync(ns.path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') throw new CliError(`cannot open the service's namespace descriptor: ${code}`, EXIT.permissionDenied);
    return null;
  }
  let ok = false;
  try {
    if (fs.fstatSync(fd).ino !== ns.inum) return null;
    const native = tryLoadNative();
    if (native !== null && ns.nsId !== null && native.nsIoctl(fd, 'NS_GET_ID').toString() !== ns.nsId) return null;
    ok = true;
    return fd;
  } catch {
    return null;
  } finally {
    if (!ok) fs.closeSync(fd);
  }
}

/** The service's namespaces for `request`, opened here; asks twice if a descriptor changed in between. */
async function openTargets(target: HandleTarget, request: ControlRequest): Promise<Array<{ ns: NamespacePath; fd: number }>> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const answer = await ask<NamespacePath | NamespacePath[]>(target, request);
    const list = Array.isArray(answer) ? answer : [answer];
    const opened: Array<{ ns: NamespacePath; fd: number }> = [];
    let all = true;
    for (const ns of list) {
      const fd = openNamespace(ns);
      if (fd === null) {
        all = false;
        break;
      }
      opened.push({ ns, fd });
    }
    if (all) return opened;
    for (const o of opened) fs.closeSync(o.fd);
  }
  throw new CliError(`${target.given}: the namespace could not be opened (it ended, or the service let it go meanwhile)`, EXIT.namespaceFailed);
}

function ownNamespace(type: string): number | undefined {
  try {
    return fs.statSync(`/proc/self/ns/${type}`).ino;
  } catch {
    return undefined;
  }
}

/** Runs a program with the descriptors as fds 3, 4, ...; resolves with its exit status (128+N for signal N). */
function run(cmd: string, args: string[], fds: number[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['inherit', 'inherit', 'inherit', ...fds] });
    child.once('error', (e) => reject(new CliError(`cannot run ${cmd}: ${(e as NodeJS.ErrnoException).code ?? e.message}`, EXIT.namespaceFailed, cmd === 'nsenter' ? 'install util-linux (nsenter)' : undefined)));
    child.once('exit', (code, signal) => resolve(code ?? 128 + (signal === null ? 0 : (signalNumber(signal) ?? 0))));
  });
}

/** `handlefs exec TARGET... [--] CMD [ARG...]`: CMD's exit status. */
export async function execIn(words: string[], split: number | undefined): Promise<number> {
  let targets: string[];
  let command: string[];
  if (split !== undefined) {
    targets = words.slice(0, split);
    command = words.slice(split + 1);
  } else {
    // Without --, the targets are the leading words that are handle files.
    let i = 0;
    while (i < words.length - 1 && findHandle(words[i]!) !== undefined) i++;
    targets = words.slice(0, i);
    command = words.slice(i);
    if (targets.length === 0) requireHandle(words[0]!);
  }
  const handles = targets.map(requireHandle);
  const chosen = new Map<string, { ns: NamespacePath; fd: number }>();
  const extra: number[] = [];
  try {
    for (const h of handles) {
      for (const o of await openTargets(h, { op: 'enter', ino: h.ino })) {
        const prior = chosen.get(o.ns.type);
        if (prior !== undefined && prior.ns.inum !== o.ns.inum) {
          extra.push(o.fd);
          throw new CliError(`the targets name two ${o.ns.type} namespaces (${prior.ns.inum} and ${o.ns.inum})`, EXIT.usage);
        }
        if (prior !== undefined || ownNamespace(o.ns.type) === o.ns.inum) extra.push(o.fd); // already there: setns of one's own user namespace is EINVAL
        else chosen.set(o.ns.type, o);
      }
    }
    const entries = [...chosen.values()];
    const args = entries.map((o, i) => `${NSENTER_OPTION[o.ns.type]}=/proc/self/fd/${3 + i}`);
    return await run('nsenter', [...args, '--', ...command], entries.map((o) => o.fd));
  } finally {
    for (const o of chosen.values()) fs.closeSync(o.fd);
    for (const fd of extra) fs.closeSync(fd);
  }
}

/** `handlefs bind TARGET FILE`: a real nsfs bind mount of the handle's namespace at FILE. */
export async function bindTo(targetPath: string, file: string): Promise<number> {
  const target = requireHandle(targetPath);
  const [opened] = await openTargets(target, { op: 'bind', ino: target.ino });
  const abs = path.resolve(file);
  try {
    if (!fs.existsSync(abs)) {
      fs.mkdirSync(path.dirname(abs), { recursive: true, mode: 0o755 });
      fs.closeSync(fs.openSync(abs, 'wx', 0o444)); // as `ip netns add` creates /run/netns/NAME
    }
    const status = await run('mount', ['--bind', '/proc/self/fd/3', abs], [opened!.fd]);
    if (status !== 0) throw new CliError(`mount --bind of the ${opened!.ns.type} namespace at ${abs} failed (status ${status})`, EXIT.namespaceFailed);
    return EXIT.ok;
  } finally {
    fs.closeSync(opened!.fd);
  }
}

/** `handlefs kill [-s SIGNAL] TARGET...`: 0 when every target was signalled. */
export async function killTargets(signal: string, targets: string[]): Promise<number> {
  const sig = signalNumber(signal)!;
  let worst: CliError | undefined;
  for (const t of targets) {
    try {
      const h = requireHandle(t);
      await ask(h, { op: 'kill', ino: h.ino, signal: sig });
    } catch (e) {
      if (!(e instanceof CliError)) throw e;
      process.stderr.write(`handlefs: ${e.message}\n`);
      worst ??= e;
    }
  }
  if (worst !== undefined) return worst.exitCode;
  return EXIT.ok;
}

export function describeEnding(e: ProcessEnding): string {
  switch (e.state) {
    case 'exited':
      return `exited ${e.code}`;
    case 'killed':
      return `killed by ${signalName(e.signal)}`;
    default:
      return 'ended (how is unknown)';
  }
}

/** `handlefs wait TARGET...`: prints how each ended; 0 when all ended and were waited for. */
export async function waitTargets(targets: string[]): Promise<number> {
  const handles = targets.map(requireHandle);
  const results = await Promise.allSettled(handles.map((h) => askAcrossRestarts<ProcessEnding>(h, { op: 'wait', ino: h.ino })));
  let code: number = EXIT.ok;
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') process.stdout.write(`${handles[i]!.given}: ${describeEnding(r.value)}\n`);
    else {
      const e = r.reason as CliError;
      process.stderr.write(`handlefs: ${e.message}\n`);
      if (code === EXIT.ok) code = e instanceof CliError ? e.exitCode : EXIT.internal;
    }
  });
  return code;
}
