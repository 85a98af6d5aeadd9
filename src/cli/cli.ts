/**
 * The handlefs command. Thin: parse, then hand over to the service or the control socket.
 * Every failure a user can meet is one line on stderr (plus a hint) and a distinct exit code.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { bindTo, execIn, killTargets, waitTargets } from './act.js';
import { parseCommand, parseMountHelper, type Command } from './args.js';
import { CliError, EXIT, asCliError } from './exit-codes.js';
import { COMMAND_HELP, MAIN_HELP } from './help.js';
import { askService } from './ask.js';
import { listCommand } from './ls.js';
import { createLogger } from '../log.js';
import { mountAt, inspectMountpoint, cleanStaleMount, mountFuse, unmountCommand } from '../fuse/mount.js';
import { bindMountsOf, describeHolders, processesUnder } from '../fuse/holders.js';
import type { ConnectionInfo } from '../fuse/types.js';
import { Keeper, type FromServer, type ToServer } from '../keeper/keeper.js';
import { controlSocketPath, deviceRecordPath, realMountpoint, requestControl, runtimeDir } from '../service/control.js';
import { checkMountpoint, checkPrivileges, checkState, mountOptionsFor, runService } from '../service/service.js';
import { formatStatus, type ServiceStatus } from '../service/status.js';
import { DEFAULT_STATE_PATH } from '../store/sqlite-store.js';

let VERSION = '0.0.0';

/** Set in the detached child of `mount --daemon`: the descriptor to report readiness on. */
const READY_FD_ENV = 'HANDLEFS_READY_FD';
/** Set by the keeper in the serving processes it starts: the mounted /dev/fuse descriptor. */
const SERVE_FD_ENV = 'HANDLEFS_SERVE_FD';

async function main(argv: string[], helper: boolean): Promise<number> {
  const command: Command = helper ? parseMountHelper(argv) : parseCommand(argv);
  switch (command.name) {
    case 'help':
      process.stdout.write(`${command.topic ? COMMAND_HELP[command.topic] : MAIN_HELP}\n`);
      return EXIT.ok;
    case 'version':
      process.stdout.write(`handlefs ${VERSION}\n`);
      return EXIT.ok;
    case 'mount':
      if (process.env[SERVE_FD_ENV] !== undefined) return serveForKeeper(command);
      return command.daemon && process.env[READY_FD_ENV] === undefined ? daemonize(argv, command) : mount(command, argv);
    case 'umount':
      return umount(command.mountpoint, command.lazy);
    case 'restart':
      return restart(command.mountpoint);
    case 'status':
      if (command.prometheus) return prometheus(command.mountpoint);
      return status(command.mountpoint, command.json);
    case 'ls':
      return listCommand(command.mountpoint, command.json);
    case 'exec':
      return execIn(command.words, command.split);
    case 'bind':
      return bindTo(command.target, command.file);
    case 'kill':
      return killTargets(command.signal, command.targets);
    case 'wait':
      return waitTargets(command.targets);
  }
}

/**
 * `handlefs mount` in the foreground (and the detached child of --daemon): checks, mounts, and
 * becomes the keeper of the mount (src/keeper/keeper.ts), which runs the serving process.
 */
async function mount(command: Extract<Command, { name: 'mount' }>, argv: string[]): Promise<number> {
  const readyFd = process.env[READY_FD_ENV] === undefined ? undefined : Number(process.env[READY_FD_ENV]);
  const tell = (message: object) => {
    if (readyFd !== undefined) fs.writeSync(readyFd, `${JSON.stringify(message)}\n`);
  };
  const logger = createLogger({ ...(command.logLevel !== undefined && { level: command.logLevel }), pretty: process.stderr.isTTY === true });
  let fd: number;
  const mountpoint = path.resolve(command.mountpoint);
  try {
    const mountOptions = mountOptionsFor(command.options);
    checkPrivileges();
    await cleanStaleOwnMount(mountpoint, mountOptions.subtype);
    await checkMountpoint(mountpoint);
    checkState(command.state ?? DEFAULT_STATE_PATH);
    const m = await mountFuse(mountpoint, mountOptions, logger);
    fd = m.handOver();
  } catch (caught) {
    const e = asCliError(caught);
    if (e instanceof CliError) tell({ ready: false, code: e.exitCode, message: e.message, hint: e.hint });
    else tell({ ready: false, code: EXIT.internal, message: (e as Error).message });
    logger.flush?.();
    throw e;
  }
  const env = { ...process.env };
  delete env[READY_FD_ENV];
  const keeper = new Keeper({
    fuseFd: fd,
    mountpoint,
    // The serving process runs this very command line, from the code installed when it starts.
    command: [process.execPath, ...process.execArgv, process.argv[1]!, ...argv],
    env,
    logPath: readyFd === undefined ? null : logPathOf(mountpoint),
    initPath: controlSocketPath(mountpoint).replace(/\.sock$/, '.init.json'),
    socketPath: controlSocketPath(mountpoint),
    deviceRecordPath,
    ...crashLimit(),
    onReady: (answer) => {
      tell(answer);
      if (!answer.ready) refused = answer;
    },
  });
  let refused: { code: number; message: string; hint?: string } | undefined;
  keeper.start();
  const code = await keeper.done;
  logger.flush?.();
  if (refused !== undefined) throw new CliError(refused.message, refused.code as CliError['exitCode'], refused.hint);
  if (code !== 0) process.exitCode = code;
  return code;
}

/** `handlefs mount` over a stale mount of handlefs (its keeper and server gone): detach it, say so, go on. */
async function cleanStaleOwnMount(mountpoint: string, subtype: string): Promise<void> {
  const state = await inspectMountpoint(mountpoint);
  if (state.state !== 'stale' || (state.fstype !== undefined && state.fstype !== `fuse.${subtype}`)) return;
  await cleanStaleMount(mountpoint);
  process.stderr.write(`handlefs: removed the stale handlefs mount at ${mountpoint} (its service was gone); mounting again\n`);
}

/** HANDLEFS_CRASH_LIMIT=N/SECONDS: the keeper gives up after N crashes in SECONDS (default 5/60). */
function crashLimit(): { maxCrashes?: number; crashWindowMs?: number } {
  const v = process.env['HANDLEFS_CRASH_LIMIT'];
  if (v === undefined) return {};
  const m = /^(\d+)\/(\d+(?:\.\d+)?)$/.exec(v.trim());
  if (m === null || Number(m[1]) < 1) throw new CliError(`HANDLEFS_CRASH_LIMIT must be N/SECONDS with N >= 1 (got "${v}")`, EXIT.usage);
  return { maxCrashes: Number(m[1]), crashWindowMs: Number(m[2]) * 1000 };
}

function logPathOf(mountpoint: string): string {
  return controlSocketPath(mountpoint).replace(/\.sock$/, '.log');
}

/**
 * A serving process started by the keeper: loads, says so, waits to be told to go (a standby waits
 * here with its code loaded), then serves the keeper's descriptor until unmounted, stopped or
 * asked to hand over.
 */
async function serveForKeeper(command: Extract<Command, { name: 'mount' }>): Promise<number> {
  const logger = createLogger({ ...(command.logLevel !== undefined && { level: command.logLevel }), pretty: process.stderr.isTTY === true });
  const send = (m: FromServer): void => {
    try {
      process.send?.(m);
    } catch {
      /* the keeper is gone */
    }
  };
  let go!: (m: Extract<ToServer, { t: 'go' }>) => void;
  const told = new Promise<Extract<ToServer, { t: 'go' }>>((r) => (go = r));
  let stop!: (reason: string) => void;
  const stopRequest = new Promise<string>((r) => (stop = r));
  let handOver!: () => void;
  const handOverRequest = new Promise<void>((r) => (handOver = r));
  let active = false;
  process.on('message', (m: ToServer) => {
    if (m.t === 'go') go(m);
    else if (m.t === 'drain') (active ? handOver : () => process.exit(0))();
    else if (m.t === 'stop') (active ? () => stop(m.reason) : () => process.exit(0))();
  });
  process.on('disconnect', () => {
    if (!active) process.exit(0); // a standby whose keeper is gone
    logger.error('the keeper is gone: the mount now ends with this process');
  });
  send({ t: 'loaded' });
  const order = await told;
  active = true;
  try {
    const report = await runService({
      mountpoint: command.mountpoint,
      statePath: command.state ?? DEFAULT_STATE_PATH,
      mountOptions: command.options,
      logger,
      version: VERSION,
      device: {
        fd: Number(process.env[SERVE_FD_ENV]),
        keeper: order.keeper,
        namespaces: {
          held: order.held ?? [],
          observer: {
            held: (info, fd) => send({ t: 'ns-hold', type: info.type, inum: info.inum, nsId: info.nsId, fd }),
            released: (type, inum) => send({ t: 'ns-release', type, inum }),
          },
        },
        handOff: {
          polled: (kh) => send({ t: 'poll', kh }),
          namespaceOpens: (type, inum, opens) => send({ t: 'ns-opens', type, inum, opens }),
        },
        ...(order.resume !== null && order.resume !== undefined && { resume: order.resume as ConnectionInfo }),
      },
      onInit: (conn) => send({ t: 'init', conn }),
      onReady: () => send({ t: 'ready' }),
      stopRequest,
      handOverRequest,
    });
    send(report.reason === 'handed over' ? { t: 'drained' } : { t: 'ending', reason: report.reason });
  } catch (caught) {
    const e = asCliError(caught);
    if (e instanceof CliError) send({ t: 'refused', code: e.exitCode, message: e.message, ...(e.hint !== undefined && { hint: e.hint }) });
    if (!(e instanceof CliError)) logger.error({ err: e }, 'the serving process failed');
    logger.flush?.();
    process.exit(e instanceof CliError ? e.exitCode : EXIT.internal);
  }
  logger.flush?.();
  // Exit now: a successor is waiting for this process (and its store lock) to be gone.
  process.exit(EXIT.ok);
}

/**
 * `mount --daemon`: run the same command detached, with its logs in the runtime directory, and
 * return once it says the mount is ready (or pass on its error and exit code).
 */
async function daemonize(argv: string[], command: Extract<Command, { name: 'mount' }>): Promise<number> {
  const mountpoint = command.mountpoint;
  // Said here, on the caller's terminal, rather than in the log.
  await cleanStaleOwnMount(path.resolve(mountpoint), mountOptionsFor(command.options).subtype);
  const logPath = logPathOf(path.resolve(mountpoint));
  fs.mkdirSync(runtimeDir(), { recursive: true, mode: 0o755 });
  const logExisted = fs.existsSync(logPath);
  const log = fs.openSync(logPath, 'a', 0o600);
  // The child runs this very command line (helper form included); the environment tells it to
  // serve in the foreground and report readiness on fd 3.
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...argv], {
    detached: true,
    stdio: ['ignore', log, log, 'pipe'],
    env: { ...process.env, [READY_FD_ENV]: '3' },
  });
  fs.closeSync(log);
  const pipe = child.stdio[3] as NodeJS.ReadableStream;
  let text = '';
  pipe.setEncoding('utf8');
  const answer = await new Promise<{ ready: boolean; code?: number; message?: string; hint?: string; told?: boolean }>((resolve) => {
    pipe.on('data', (chunk: string) => {
      text += chunk;
      const nl = text.indexOf('\n');
      if (nl >= 0) resolve({ ...JSON.parse(text.slice(0, nl)), told: true });
    });
    child.once('exit', (code) => resolve({ ready: false, code: code ?? EXIT.internal, message: `the service exited (${code ?? 'signal'}) before the mount was ready; see ${logPath}` }));
  });
  pipe.removeAllListeners('data');
  (pipe as unknown as { destroy(): void }).destroy();
  child.unref();
  if (answer.ready) return EXIT.ok;
  // A refused start leaves nothing behind: its reason is on the caller's terminal. A log this
  // start created goes with it (a service that died without telling keeps the log it names).
  if (answer.told && !logExisted) fs.rmSync(logPath, { force: true });
  throw new CliError(answer.message ?? 'the service failed to start', (answer.code ?? EXIT.internal) as CliError['exitCode'], answer.hint);
}

/** Unmounting a handlefs mount (always root's: only root can start the service) needs root. */
function requireRootToUnmount(p: string): void {
  if (process.getuid?.() === 0) return;
  if (mountAt(p) === undefined) throw new CliError(`${p} is not mounted`, EXIT.notMounted);
  throw new CliError(`unmounting ${p} needs root: the handlefs mount there belongs to root`, EXIT.notRoot, `run it as root: sudo handlefs umount ${p}`);
}

/** The pids that must be gone before a mount's service has really stopped (keeper and server). */
async function servicePids(p: string): Promise<number[]> {
  try {
    const s = await requestControl<ServiceStatus>(p, { op: 'status' }, 3000);
    return [s.pid, ...(s.keeperPid !== null && s.keeperPid !== undefined ? [s.keeperPid] : [])];
  } catch {
    return [];
  }
}

/** Whether `pid` still runs (a zombie has exited: it only waits for its parent). */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX]/s.test(stat);
  } catch {
    return false;
  }
}

async function waitGone(pids: number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  let left = pids.filter(alive);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    left = left.filter(alive);
  }
  return left;
}

/**
 * `handlefs umount`: exit 0 only once the mount is gone and its service has exited. A busy mount
 * (bind mounts of its handles, open files) is refused with EXIT.mountBusy and what holds it;
 * --lazy detaches it anyway and says who the service goes on serving.
 */
async function umount(mountpoint: string, lazy: boolean): Promise<number> {
  const p = realMountpoint(mountpoint);
  requireRootToUnmount(p);
  const state = await inspectMountpoint(p);
  if (state.state === 'stale') {
    await cleanStaleMount(p);
    process.stderr.write(`handlefs: removed the stale mount at ${p} (its service was gone)\n`);
    return EXIT.ok;
  }
  const m = mountAt(p);
  if (m === undefined) throw new CliError(`${p} is not mounted`, EXIT.notMounted);
  if (!m.fstype.startsWith('fuse.')) throw new CliError(`${p} is not a handlefs mount (${m.fstype})`, EXIT.notMounted);
  const pids = await servicePids(p);
  const binds = bindMountsOf(p);
  if (binds.length > 0 && !lazy) {
    // umount would succeed, yet the filesystem lives on in the bind mounts and so does the service.
    // Files opened through the mount or through one of those bind mounts are named too.
    const open = processesUnder(p, 5, binds.map((b) => b.mountpoint));
    throw new CliError(
      `${p} is busy: ${describeHolders({ bindMounts: binds, processes: open })}`,
      EXIT.mountBusy,
      `${open.length > 0 ? 'unmount and close' : 'unmount'} those first, or detach it anyway: handlefs umount --lazy ${p}`,
    );
  }
  const [cmd, args] = unmountCommand(p, lazy);
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 15_000, env: { ...process.env, LC_ALL: 'C' } });
  if (r.status !== 0 && mountAt(p) !== undefined) {
    const busy = /busy/i.test(r.stderr ?? '');
    if (busy) {
      const holders = describeHolders({ bindMounts: [], processes: processesUnder(p) });
      throw new CliError(`${p} is busy${holders ? `: ${holders}` : ' (open files or working directories in it)'}`, EXIT.mountBusy, `close them, or detach it anyway: handlefs umount --lazy ${p}`);
    }
    throw new CliError(`could not unmount ${p}: ${(r.stderr ?? '').trim() || `${cmd} exit ${r.status}`}`, EXIT.internal);
  }
  if (lazy && (binds.length > 0 || processesUnder(p, 1).length > 0 || (await waitGone(pids, 1000)).length > 0)) {
    const users = describeHolders({ bindMounts: binds, processes: [] });
    process.stderr.write(
      `handlefs: detached ${p}; the service${pids.length > 0 ? ` (pid ${pids.join(', ')})` : ''} goes on serving ${users ?? 'the files still open in it'} and exits once they are gone\n`,
    );
    return EXIT.ok;
  }
  // Wait for the service to finish (flush the store, close its socket) so scripts can go on.
  const left = await waitGone(pids, 15_000);
  if (left.length > 0) {
    throw new CliError(`${p} is unmounted, but its service (pid ${left.join(', ')}) has not exited after 15 s`, EXIT.serviceUnreachable, `see its log; stop it with: kill ${left.join(' ')}`);
  }
  return EXIT.ok;
}

/**
 * `handlefs restart`: SIGHUP to the mount's keeper, then wait until a new serving process (the
 * code installed now) answers.
 */
async function restart(mountpoint: string): Promise<number> {
  const p = realMountpoint(mountpoint);
  if (process.getuid?.() !== 0) throw new CliError(`restart needs root (it signals the service's keeper)`, EXIT.notRoot);
  const before = await askService<ServiceStatus>(p, { op: 'status' });
  if (before.keeperPid === null || before.keeperPid === undefined) {
    throw new CliError(`the service at ${p} (pid ${before.pid}) has no keeper to restart it`, EXIT.restartFailed, `remount it with this version: handlefs umount ${p} && handlefs mount ${p} ...`);
  }
  const started = Date.now();
  process.kill(before.keeperPid, 'SIGHUP');
  const deadline = started + 30_000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    const now = await requestControl<ServiceStatus>(p, { op: 'status' }, 2000).catch(() => undefined);
    if (now !== undefined && now.pid !== before.pid) {
      process.stdout.write(`handlefs: ${p} is served by pid ${now.pid} (handlefs ${now.version}; was pid ${before.pid}, ${before.version}) after ${Date.now() - started} ms\n`);
      return EXIT.ok;
    }
  }
  throw new CliError(`no new serving process took over ${p} within 30 s`, EXIT.restartFailed, `see the log${before.logPath ? ` (${before.logPath})` : ''}`);
}

async function status(mountpoint: string, json: boolean): Promise<number> {
  const s = await askService<ServiceStatus>(mountpoint, { op: 'status' });
  process.stdout.write(json ? `${JSON.stringify(s)}\n` : `${formatStatus(s)}\n`);
  return EXIT.ok;
}

/** `status --prometheus`: the service's metrics in the Prometheus text format. */
async function prometheus(mountpoint: string): Promise<number> {
  process.stdout.write(await askService<string>(mountpoint, { op: 'metrics' }));
  return EXIT.ok;
}

/**
 * Runs the command line and sets the exit code. `helper`: the mount(8) helper form
 * (`mount.fuse.handlefs SOURCE MNT -o OPTS`). `version` comes from the entry, which knows where
 * package.json is relative to itself.
 */
export function runCli(argv: string[], options: { helper: boolean; version: string }): void {
  VERSION = options.version;
  main(argv, options.helper).then(
  (code) => {
    process.exitCode = code;
    // Everything is closed by now; should a stray handle linger, do not hang the caller.
    setTimeout(() => process.exit(), 2000).unref();
  },
  (caught: unknown) => {
    const e = asCliError(caught);
    if (e instanceof CliError) {
      process.stderr.write(`handlefs: ${e.message}\n${e.hint ? `handlefs: ${e.hint}\n` : ''}`);
      process.exitCode = e.exitCode;
    } else {
      process.stderr.write(`handlefs: internal error: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = EXIT.internal;
    }
  },
);
}
