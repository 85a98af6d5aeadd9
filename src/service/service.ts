/**
 * The handlefs service: checks, store, container, mount, control socket, and a clean stop.
 *
 * Order matters for "nothing half-done": everything that can be refused (options, mountpoint,
 * /dev/fuse, root, the state file) is checked before anything is mounted, and every step after
 * the mount is undone by the same finally.
 */
import fs from 'node:fs';
import { parseHidePid } from '../tree/access.js';
import type { HandleTreeOptions } from '../tree/handle-fs.js';
import path from 'node:path';
import type { Container } from 'inversify';
import type { Logger } from 'pino';
import type { InodeTable } from '../core/inode-table.js';
import { CORE } from '../core/tokens.js';
import { inspectMountpoint, MountError, MountOptionError, parseMountOptions, type MountOptions } from '../fuse/mount.js';
import { DevFuseChannel } from '../fuse/device.js';
import { unmount } from '../fuse/mount.js';
import { bindMountsOf, describeHolders, processesUnder } from '../fuse/holders.js';
import type { SessionFactory } from '../fuse/module.js';
import type { FuseSession } from '../fuse/session.js';
import type { ConnectionInfo, LowLevelFileSystem } from '../fuse/types.js';
import type { HeldNamespaceCopy, KeeperInfo } from '../keeper/keeper.js';
import { ProcNamespaceSource, type NamespaceHoldObserver } from '../sources/proc-namespace-source.js';
import { FUSE_TOKENS } from '../fuse/tokens.js';
import type { FuseServer } from '../fuse/module.js';
import { createSourcesModule } from '../sources/module.js';
import { SOURCES } from '../sources/tokens.js';
import type { NsType } from '../sources/types.js';
import { StateLockedError } from '../store/lock.js';
import { NotOurStateError } from '../store/ownership.js';
import { storeModule } from '../store/module.js';
import { StateNotWritableError, openSqliteStore, type SqliteStore } from '../store/index.js';
import { silentLogger } from '../log.js';
import { STORE_TOKENS } from '../store/tokens.js';
import type { HandleObject } from '../tree/context.js';
import type { HandleTree, HandOffObserver } from '../tree/handle-fs.js';
import { TREE } from '../tree/tokens.js';
import { raiseFdLimit, watchFdPressure } from './fd-limit.js';
import { ServiceRefusal } from './refusal.js';
import { assembleContainer } from './container.js';
import { ControlServer, realMountpoint, runtimeDir } from './control.js';
import { answerControl, checkCaller } from './control-ops.js';
import { handleBindMounts } from './bind-mounts.js';
import { guardKeptCopies } from './kept-copies.js';
import { collectStatus, type ServiceStatus } from './status.js';
import { collectHandles } from './handles.js';
import { ServiceMetrics } from './metrics.js';

/** Default kernel cache timeouts: long, because exits are invalidated explicitly. */
export const DEFAULT_TIMEOUT_SECONDS = 3600;

export interface ServiceOptions {
  mountpoint: string;
  statePath: string;
  /** -o options for the FUSE layer, already stripped of the CLI's own. */
  mountOptions: readonly string[];
  logger: Logger;
  version: string;
  /** Called once the kernel has completed INIT: the mount is usable. */
  onReady?: (status: ServiceStatus) => void;
  /**
   * Serve a mount a keeper made and holds (src/keeper/keeper.ts) instead of mounting: the
   * mountpoint is not checked (it is ours) and nothing is mounted. With `resume`, the INIT a
   * predecessor negotiated: this process takes over its connection.
   */
  device?: ServedDevice;
  /** Called with the negotiated INIT once it is known (the keeper keeps it for successors). */
  onInit?: (conn: ConnectionInfo) => void;
  /** Resolves with a reason when the service must stop (unmount) as it would on SIGTERM. */
  stopRequest?: Promise<string>;
  /**
   * Resolves when the service must hand the mount over (graceful restart): it stops reading,
   * answers what it read, flushes and returns without unmounting.
   */
  handOverRequest?: Promise<void>;
}

export interface ServedDevice {
  /** The mounted /dev/fuse descriptor (the same open file the keeper holds). */
  fd: number;
  resume?: ConnectionInfo;
  keeper: KeeperInfo;
  /**
   * The keeper keeps a copy of every namespace descriptor the service holds: told of each hold and
   * release; `held` are those it kept for a predecessor, which this process takes over.
   */
  namespaces?: { observer: NamespaceHoldObserver; held: HeldNamespaceCopy[] };
  /** What else the keeper keeps for a successor: poll waiters, open files of namespace handles. */
  handOff?: HandOffObserver;
}

export interface StopReport {
  reason: string;
  status: ServiceStatus;
}

/**
 * The -o options the tree takes rather than the FUSE layer (`hidepid=`, judged per caller as
 * procfs does), and the rest. A bad value is a ServiceRefusal naming the option.
 */
export function treeOptionsFor(options: readonly string[]): { tree: HandleTreeOptions; rest: string[] } {
  const tree: HandleTreeOptions = {};
  const rest: string[] = [];
  for (const word of options.flatMap((o) => o.split(',')).map((o) => o.trim())) {
    if (!word.startsWith('hidepid=')) {
      if (word !== '') rest.push(word);
      continue;
    }
    const value = word.slice('hidepid='.length);
    const mode = parseHidePid(value);
    if (mode === undefined) {
      throw new ServiceRefusal(`mount option hidepid: "${value}" is not one of off (0), noaccess (1), invisible (2)`, 'badMountOption', "run 'handlefs mount --help' for the options");
    }
    tree.hidepid = mode;
  }
  return { tree, rest };
}

/** Parses -o options with handlefs's defaults; unknown ones are a ServiceRefusal naming the option. */
export function mountOptionsFor(options: readonly string[]): MountOptions {
  try {
    const given = treeOptionsFor(options).rest.join(',');
    const parsed = parseMountOptions(given);
    const has = (name: string) => options.some((o) => o.split(',').some((x) => x.trim().startsWith(`${name}=`)));
    return {
      ...parsed,
      entryTimeout: has('entry_timeout') ? parsed.entryTimeout : DEFAULT_TIMEOUT_SECONDS,
      attrTimeout: has('attr_timeout') ? parsed.attrTimeout : DEFAULT_TIMEOUT_SECONDS,
    };
  } catch (e) {
    if (e instanceof MountOptionError) throw new ServiceRefusal(e.message, 'badMountOption', "run 'handlefs mount --help' for the options");
    throw e;
  }
}

/** Refuses a mountpoint that is missing, not a directory, not empty, mounted or stale. */
export async function checkMountpoint(mountpoint: string): Promise<string> {
  const state = await inspectMountpoint(mountpoint);
  const p = state.path;
  switch (state.state) {
    case 'ok':
      break;
    case 'missing':
      throw new ServiceRefusal(`mountpoint ${p} does not exist`, 'mountpointMissing', `create it first: mkdir -p ${p}`);
    case 'not-a-directory':
      throw new ServiceRefusal(`mountpoint ${p} is not a directory`, 'notADirectory');
    case 'mounted':
      throw new ServiceRefusal(`${p} is already mounted (${state.fstype} from ${state.source})`, 'alreadyMounted', `unmount it first: umount ${p}`);
    case 'stale':
      throw new ServiceRefusal(`${p} is a stale FUSE mount whose service is gone (ENOTCONN)`, 'staleMount', `clean it up: ${state.fix.join(' or ')}`);
    case 'unresponsive':
      throw new ServiceRefusal(`${p} does not answer (a hung mount?)`, 'staleMount', `clean it up: umount -l ${p}`);
    case 'error':
      throw new ServiceRefusal(`cannot use mountpoint ${p}: ${state.code}`, 'mountpointMissing');
  }
  if (fs.readdirSync(p).length > 0) throw new ServiceRefusal(`mountpoint ${p} is not empty`, 'notEmpty', 'use an empty directory');
  return p;
}

export function checkPrivileges(): void {
  if (!fs.existsSync('/dev/fuse')) throw new ServiceRefusal('/dev/fuse does not exist', 'noFuseDevice', 'load the fuse module (modprobe fuse) or run where FUSE is available');
  if (process.getuid?.() !== 0) {
    throw new ServiceRefusal(
      "mounting handlefs needs root: it reads every process's namespaces (/proc/PID/ns) and holds their descriptors",
      'notRoot',
      'run it as root (sudo handlefs mount ...)',
    );
  }
}

function errnoOf(e: unknown): string | undefined {
  for (let cur = e as { code?: unknown; cause?: unknown } | undefined; cur; cur = cur.cause as typeof cur) {
    if (typeof cur.code === 'string' && /^E[A-Z]+$/.test(cur.code)) return cur.code;
  }
  return undefined;
}

/**
 * Where the records that detect a state restored from an older copy live (src/store/witness.ts):
 * per boot under the runtime directory, machine-wide under /var/lib/misc/handlefs
 * (HANDLEFS_RECORDS_DIR overrides; tests use it).
 */
export function stateRecordDirs(): { perBoot: string; machine: string } {
  return { perBoot: path.join(runtimeDir(), 'states'), machine: process.env.HANDLEFS_RECORDS_DIR ?? '/var/lib/misc/handlefs' };
}

/** Turns a failure to open the state file into the CLI's one-line error and exit code. */
export function stateError(statePath: string, e: unknown): ServiceRefusal {
  if (e instanceof StateLockedError) return new ServiceRefusal(e.message, 'stateLocked', 'stop the other service, or give this one another --state FILE');
  const code = errnoOf(e);
  const cause = (e as Error).message;
  if (code === 'EROFS') return new ServiceRefusal(`state ${statePath} is in a read-only place: ${cause}`, 'stateReadOnly', 'give --state a file in a writable directory');
  if (code === 'ENOSPC') return new ServiceRefusal(`state ${statePath}: no space left: ${cause}`, 'stateReadOnly', 'free space, or give --state a file elsewhere');
  if (e instanceof StateNotWritableError) return new ServiceRefusal(`state ${statePath} cannot be written there: ${cause}`, 'stateReadOnly', 'give --state a file in a writable directory');
  if (e instanceof NotOurStateError) return new ServiceRefusal(`state ${statePath} cannot be used: ${cause}`, 'stateUnreadable', 'check the --state path; handlefs only uses, and only ever moves aside, files it wrote');
  return new ServiceRefusal(`state ${statePath} cannot be used: ${cause}`, 'stateUnreadable', 'check the file, or give --state another file');
}

/**
 * Opens and closes the state file, so that what would refuse the service (unreadable, read-only,
 * locked) refuses it before anything is mounted.
 */
export function checkState(statePath: string): void {
  let store: SqliteStore | undefined;
  try {
    store = openSqliteStore({ path: path.resolve(statePath), logger: silentLogger(), commitThread: false });
  } catch (e) {
    throw stateError(statePath, e);
  } finally {
    store?.close();
  }
}

/** A session on the keeper's descriptor; stopping it unmounts like a mount of our own would. */
function serveDevice(container: Container, device: ServedDevice, mountpoint: string, mountOptions: MountOptions, log: Logger): FuseSession {
  const channel = new DevFuseChannel(device.fd, container.get<Logger>(FUSE_TOKENS.Logger), { closeFd: true });
  const session = container.get<SessionFactory>(FUSE_TOKENS.SessionFactory)(container.get<LowLevelFileSystem>(FUSE_TOKENS.FileSystem), channel, {
    entryTimeout: mountOptions.entryTimeout,
    attrTimeout: mountOptions.attrTimeout,
    debug: mountOptions.debug,
    unmount: () => unmount(mountpoint, log),
    ...(device.resume !== undefined && { resume: device.resume }),
  });
  void session.run().catch(() => undefined); // as serve() does; run() hands back the same promise
  return session;
}

/**
 * Runs the service until the filesystem is unmounted (umount, DESTROY, SIGINT, SIGTERM) and
 * returns why it stopped. Throws ServiceRefusal for anything refused before the mount.
 */
export async function runService(options: ServiceOptions): Promise<StopReport> {
  const log = options.logger;
  const mountOptions = mountOptionsFor(options.mountOptions);
  const treeOptions = treeOptionsFor(options.mountOptions).tree;
  checkPrivileges();
  const device = options.device;
  // A keeper's mount is ours and may have nobody serving it yet: stat()ing it would wait on us.
  // The real path (symlinks resolved; never stat()s a mount's root): what /proc/mounts shows, and
  // what the control socket is named by.
  const mountpoint = realMountpoint(device ? path.resolve(options.mountpoint) : await checkMountpoint(options.mountpoint));
  const statePath = path.resolve(options.statePath);

  const container: Container = assembleContainer({
    logger: log,
    store: { module: storeModule({ path: statePath, witness: stateRecordDirs() }) },
    sources: createSourcesModule({ logger: log }),
    mountOptions,
    // File handles a predecessor gave out stay below this server's (2^32 per server).
    tree: { ...treeOptions, ...(device && { firstFh: device.keeper.generation * 2 ** 32 + 1, resumed: device.resume !== undefined }) },
  });
  const keptNamespaces = device?.namespaces;
  let keptDecided = (): void => {};
  if (keptNamespaces !== undefined) {
    const source = container.get(SOURCES.NamespaceSource);
    if (source instanceof ProcNamespaceSource) {
      const guard = guardKeptCopies(keptNamespaces.held, keptNamespaces.observer, (type, inum) => source.holds(type, inum));
      keptDecided = guard.decided;
      source.keepWith(guard.observer, [device!.keeper.pid]);
    }
  }
  let store: SqliteStore;
  try {
    store = container.get<SqliteStore>(STORE_TOKENS.SqliteStore);
    // Rows of another boot name objects that can no longer exist: drop them in one statement
    // before the tree restores the rest (pruning never lowers the high-water mark).
    const pruned = store.pruneOtherScopes(container.get(SOURCES.ProcessSource).identityScope());
    if (pruned > 0) log.info({ state: statePath, rows: pruned }, 'pruned the rows of earlier boots');
  } catch (e) {
    container.unbindAll();
    throw stateError(statePath, e);
  }
  const fdLimit = raiseFdLimit(log); // after the refusals, which must stay one line on stderr
  const startedAt = Date.now();
  let session: FuseSession | undefined;
  let control: ControlServer | undefined;
  let reason = 'unmounted';
  let handedOver = false;
  /** What a stop leaves behind (bind mounts and open files that lose their service), said in the last log line. */
  let leftBehind: string | undefined;
  let stopFdWatch: (() => void) | undefined;
  const stopFor = (why: string) => {
    reason = why;
    const binds = bindMountsOf(mountpoint);
    leftBehind ??= describeHolders({ bindMounts: binds, processes: processesUnder(mountpoint, 5, binds.map((b) => b.mountpoint)) });
    void session?.stop(why);
  };
  const stopOnSignal = (signal: NodeJS.Signals) => stopFor(signal);
  void options.stopRequest?.then(stopFor);
  try {
    const tree = container.get<HandleTree>(TREE.HandleTree);
    if (device?.handOff !== undefined) tree.handOff = device.handOff;
    const table = container.get<InodeTable<HandleObject>>(CORE.Table);
    const bindMounts = (): Map<number, string[]> => {
      const out = new Map<number, string[]>();
      for (const [root, points] of handleBindMounts(mountpoint)) {
        const ino = tree.inoOfPath(root);
        if (ino !== undefined) out.set(ino, [...(out.get(ino) ?? []), ...points]);
      }
      return out;
    };
    const status = (): ServiceStatus =>
      collectStatus({ version: options.version, mountpoint, statePath, startedAt, table, store, ...(session && { session }), ...(device && { keeper: device.keeper }), held: () => tree.heldNamespaces(), bindMounts });
    const metrics = new ServiceMetrics(status);
    store.onCommit = metrics.observeCommit;
    tree.invalidator.onInodeDelivered = metrics.observeExitNotification;
    session = device
      ? serveDevice(container, device, mountpoint, mountOptions, log)
      : await container.get<FuseServer>(FUSE_TOKENS.Server).start(mountpoint, { handleSignals: false });
    session.observeRequests(metrics.observeRequest);
    process.on('SIGINT', stopOnSignal);
    process.on('SIGTERM', stopOnSignal);
    // Settles once the namespaces the keeper kept are taken over (at once when there are none).
    let adoptedNow!: () => void;
    const adopted = new Promise<void>((r) => (adoptedNow = r));
    control = await ControlServer.listen(
      mountpoint,
      (request, caller, signal) => {
        if (request.op === 'handles' || request.op === 'metrics') {
          checkCaller(request, caller);
          return request.op === 'handles' ? collectHandles(tree, mountpoint) : metrics.text();
        }
        // Acting on a handle waits until what the predecessor held is taken over: a handle
        // kept only through the keeper is unknown to this process until then.
        return adopted.then(() => answerControl(tree, status, request, caller, signal));
      },
      log,
    );
    await session.ready;
    tree.startSweeping();
    stopFdWatch = watchFdPressure(log, fdLimit.soft);
    const conn = session.connection!;
    log.info(
      { version: options.version, mountpoint, state: statePath, options: mountOptions, protocol: `${conn.major}.${conn.minor}`, reader: session.readMechanism, fdLimit: fdLimit.soft, kernelProtocol: `${conn.kernelMajor}.${conn.kernelMinor}` },
      'handlefs started',
    );
    options.onInit?.(conn);
    options.onReady?.(status());
    if (keptNamespaces !== undefined && keptNamespaces.held.length > 0) {
      // What the predecessor held stays held (the keeper kept it alive across the gap); what
      // cannot be adopted is let go, so the keeper's copy does not outlive the service's hold.
      void tree.adoptHeld(keptNamespaces.held, new Set(bindMounts().keys())).then(
        (missed) => {
          for (const m of missed) keptNamespaces.observer.released(m.type as NsType, m.inum);
          log.info({ held: keptNamespaces.held.length, letGo: missed.length }, 'took over the namespaces the keeper kept');
        },
        (err: unknown) => log.warn({ err }, 'taking over the namespaces the keeper kept failed'),
      ).finally(() => {
        keptDecided();
        adoptedNow();
      });
    } else {
      keptDecided();
      adoptedNow();
    }
    const running = session.run();
    if (options.handOverRequest) {
      const s = session;
      const handOver = options.handOverRequest.then(async () => {
        if (!s.running) return;
        await s.detach();
        handedOver = true;
        reason = 'handed over';
      });
      await Promise.race([running, handOver]);
    } else {
      await running;
    }
    const final = status();
    if (handedOver) log.info({ reason, counters: final.counters }, 'handlefs handed the mount over');
    else if (leftBehind !== undefined) log.warn({ reason, counters: final.counters, leftBehind }, `handlefs stopped (${reason}); left behind, now without a service: ${leftBehind}`);
    else log.info({ reason, counters: final.counters }, `handlefs stopped (${reason}); nothing left behind`);
    return { reason, status: final };
  } catch (e) {
    if (e instanceof MountError) throw new ServiceRefusal(e.message, 'mountFailed');
    throw e;
  } finally {
    stopFdWatch?.();
    process.off('SIGINT', stopOnSignal);
    process.off('SIGTERM', stopOnSignal);
    if (session?.running && !handedOver) await session.stop('service shutting down').catch(() => undefined);
    await control?.close().catch(() => undefined);
    container.unbindAll(); // destroys the tree, closes the exit watcher, flushes and unlocks the store
  }
}
