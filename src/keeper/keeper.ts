/**
 * The keeper: the small, long-lived process that owns a handlefs mount's /dev/fuse open file and
 * runs the serving process as its child. While the keeper holds the open file the FUSE connection
 * lives, whatever happens to the server: requests queue until a successor reads them.
 *
 * Kept minimal on purpose (Node built-ins only, no project imports, no dependencies), so that
 * upgrading handlefs rarely has to replace it: `handlefs restart` replaces the server with the code
 * installed now, the keeper stays. docs/architecture.md ("Surviving restarts") says what its own
 * death still costs.
 *
 * What it does:
 * - starts the server with the device as its fd 3 and an IPC channel, and one standby server that
 *   has loaded its code and waits (so a crash costs a store open, not a Node start);
 * - keeps the INIT the first server negotiated (the server sends it; also written next to the
 *   control socket) and gives it to every successor, which sees no INIT;
 * - when the server dies unasked: bumps the kernel's dentry epoch (FUSE_NOTIFY_INC_EPOCH: no cached
 *   name survives the gap) and has the kernel resend what the dead one had read
 *   (FUSE_NOTIFY_RESEND), then starts the standby; after 5 deaths in a minute it gives up: logs
 *   why, aborts the connection (no client waits forever) and detaches the mount;
 * - SIGHUP (`handlefs restart`, `systemctl reload`): starts a fresh server from the installed
 *   code, lets the old one finish what it read, then hands over;
 * - keeps its own copy of every namespace descriptor the server holds (told over the channel), so
 *   a crash releases none; the successor gets the list, re-opens them through /proc/<keeper>/fd
 *   and adopts them; the copy is closed when the service lets the namespace go;
 * - remembers the kernel's poll handles of clients waiting in poll(2) on a handle and wakes them
 *   at every takeover (they poll the successor again), and how many files each held namespace's
 *   handle has open (the successor keeps those held until their RELEASE);
 * - SIGTERM/SIGINT: the server unmounts and flushes; the keeper exits with its code.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

/** How the keeper talks to its server over the IPC channel (JSON messages). */
export type ToServer =
  /** `held`: the namespaces the keeper keeps for the service (a successor takes them over). */
  | { t: 'go'; resume: unknown; keeper: KeeperInfo; held: HeldNamespaceCopy[] }
  | { t: 'drain' }
  | { t: 'stop'; reason: string };
export type FromServer =
  | { t: 'loaded' }
  | { t: 'init'; conn: unknown }
  | { t: 'ready' }
  | { t: 'refused'; code: number; message: string; hint?: string }
  | { t: 'ending'; reason: string }
  | { t: 'drained' }
  /** The server holds a namespace from now on: its descriptor `fd` (the keeper takes a copy). */
  | { t: 'ns-hold'; type: string; inum: number; nsId: string | null; fd: number }
  /** The service no longer holds the namespace: the keeper closes its copy. */
  | { t: 'ns-release'; type: string; inum: number }
  /** Open files of the handle of a held namespace (`opens`): a successor keeps the hold while they may be open. */
  | { t: 'ns-opens'; type: string; inum: number; opens: number }
  /** A client waits in poll(2) on a handle: `kh` is the kernel's poll handle, woken at every takeover. */
  | { t: 'poll'; kh: number };

/** A namespace the keeper holds for the service. */
export interface HeldNamespaceCopy {
  type: string;
  inum: number;
  nsId: string | null;
  /** Open files of its handle when the server last said (absent: none). */
  opens?: number;
}

/** What a server is told about its keeper (and reports in `handlefs status`). */
export interface KeeperInfo {
  pid: number;
  /** Servers started after the first (crashes and restarts). */
  restarts: number;
  /** Why the last one was started: 'crash: …' or 'restart'; null for the first. */
  lastRestart: { reason: string; at: string } | null;
  /** Counts servers; a server's file handles start at generation × 2^32. */
  generation: number;
  logPath: string | null;
}

export interface KeeperOptions {
  /** The mounted /dev/fuse descriptor; the keeper owns it from now on. */
  fuseFd: number;
  mountpoint: string;
  /** argv of a server: [node, ...args]. Spawned with HANDLEFS_SERVE_FD=3 and an IPC channel. */
  command: string[];
  env: NodeJS.ProcessEnv;
  /** Where the servers' stdout/stderr go (an fd), else inherited. */
  outputFd?: number;
  logPath?: string | null;
  /** The INIT a server negotiated is also kept here (for a keeper's successor one day; for people). */
  initPath?: string;
  /** The servers' control socket: removed when the mount ends (a killed server leaves it behind). */
  socketPath?: string;
  /** Where to record which mountpoint serves the mount's device (see deviceRecordPath). */
  deviceRecordPath?: (dev: string) => string;
  /** Crashes in `crashWindowMs` after which the keeper gives up. Default 5 in 60 s. */
  maxCrashes?: number;
  crashWindowMs?: number;
  /** A server not serving this long after it was told to go is killed (a crash). Default 30 s. */
  startTimeoutMs?: number;
  /** Keep a standby server loaded (default true). */
  standby?: boolean;
  /** The first server is serving (or refused to start). */
  onReady?: (answer: { ready: true } | { ready: false; code: number; message: string; hint?: string }) => void;
}

/** FUSE notification codes (include/uapi/linux/fuse.h). */
const NOTIFY_POLL = 1;
const NOTIFY_RESEND = 7;
const NOTIFY_INC_EPOCH = 8;
/** Exit code when the keeper gave up after repeated crashes (EXIT.internal). */
const EXIT_GAVE_UP = 1;

const LEVEL_NAMES: Record<number, string> = { 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

function log(level: number, msg: string, fields: Record<string, unknown> = {}): void {
  if (process.stderr.isTTY) {
    const extra = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
    process.stderr.write(`[${new Date().toTimeString().slice(0, 8)}] ${LEVEL_NAMES[level] ?? level}: keeper: ${msg}${extra ? ` ${extra}` : ''}\n`);
    return;
  }
  // The same JSON lines pino writes, so one log holds both.
  process.stderr.write(`${JSON.stringify({ level, time: Date.now(), pid: process.pid, layer: 'keeper', ...fields, msg })}\n`);
}

/** Poll handles the keeper remembers at most (the oldest are forgotten first: a spurious wake-up is harmless). */
const MAX_POLLERS = 65_536;

function notify(fd: number, code: number, kh?: number): boolean {
  const b = Buffer.alloc(kh === undefined ? 16 : 24);
  b.writeUInt32LE(b.length, 0);
  b.writeInt32LE(code, 4);
  if (kh !== undefined) b.writeBigUInt64LE(BigInt(kh), 16);
  try {
    fs.writeSync(fd, b);
    return true;
  } catch {
    return false;
  }
}

/** The fusectl connection number of the mount at `mountpoint` (its device minor), if mounted. */
export function fuseConnectionOf(mountpoint: string): number | undefined {
  let text = '';
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return undefined;
  }
  let found: number | undefined;
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const mp = (f[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    const sep = f.indexOf('-');
    if (mp === mountpoint && sep > 0 && (f[sep + 1] ?? '').startsWith('fuse')) found = Number((f[2] ?? '').split(':')[1]);
  }
  return found;
}

interface Server {
  child: ChildProcess;
  loaded: boolean;
  /** Told to go (it is, or is becoming, the one serving). */
  active: boolean;
  ready: boolean;
  /** Asked to hand over (graceful restart) or to stop: its exit is not a crash. */
  leaving: 'drain' | 'stop' | null;
  /** It said it is ending on its own (unmounted, DESTROY). */
  ending: boolean;
  startTimer: NodeJS.Timeout | null;
}

export class Keeper {
  private readonly o: Required<Omit<KeeperOptions, 'outputFd' | 'onReady' | 'initPath' | 'socketPath' | 'deviceRecordPath'>> & Pick<KeeperOptions, 'outputFd' | 'onReady' | 'initPath' | 'socketPath' | 'deviceRecordPath'>;
  private conn: unknown = null;
  /** The mount's device ("0:N"; N is its fusectl connection), known from the first INIT. */
  private device: string | undefined;
  private deviceRecord: string | undefined;
  private current: Server | null = null;
  private standby: Server | null = null;
  private readonly crashes: number[] = [];
  private info: KeeperInfo;
  private stopping: string | null = null;
  private firstAnswered = false;
  private resolveDone!: (code: number) => void;
  /** Resolves with the keeper's exit code once the mount has ended. */
  readonly done: Promise<number>;
  private closed = false;
  /**
   * One descriptor per namespace the service holds, keyed `type:inum`: a crash of the server
   * does not release them; the successor re-opens them through /proc/<keeper>/fd and takes over.
   */
  private readonly nsCopies = new Map<string, HeldNamespaceCopy & { fd: number }>();
  /** Open files of held namespaces' handles, keyed `type:inum`, as the server last said. */
  private readonly nsOpens = new Map<string, number>();
  /**
   * Poll handles of clients waiting in poll(2) on a handle (the kernel's `kh`). At a takeover each
   * is woken: the kernel polls again, now the successor, which registers the waiter itself.
   */
  private readonly pollers = new Set<number>();

  constructor(options: KeeperOptions) {
    this.o = {
      maxCrashes: 5,
      crashWindowMs: 60_000,
      startTimeoutMs: 30_000,
      standby: true,
      logPath: null,
      ...options,
    };
    this.info = { pid: process.pid, restarts: 0, lastRestart: null, generation: 0, logPath: this.o.logPath };
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  start(): void {
    const onHup = () => this.restart();
    const onStop = (signal: NodeJS.Signals) => this.stop(signal);
    process.on('SIGHUP', onHup);
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
    void this.done.then(() => {
      process.off('SIGHUP', onHup);
      process.off('SIGTERM', onStop);
      process.off('SIGINT', onStop);
    });
    this.current = this.spawnServer();
    this.go(this.current, null);
  }

  /** Graceful replacement with the code installed now (SIGHUP). */
  restart(): void {
    if (this.stopping !== null || this.current === null) return;
    log(30, 'restart requested: starting a server from the installed code', { server: this.current.child.pid });
    // The standby may run older code: replace it, and hand over once the new one has loaded.
    this.dropStandby();
    const next = this.spawnServer();
    this.standby = next;
    const handOver = () => {
      const old = this.current;
      if (old === null || this.stopping !== null || this.standby !== next) return;
      if (!old.ready || old.child.exitCode !== null || old.child.signalCode !== null) return; // it died meanwhile: the crash path took over
      old.leaving = 'drain';
      this.send(old, { t: 'drain' });
    };
    if (next.loaded) handOver();
    else next.child.once('message', handOver);
  }

  stop(reason: string): void {
    if (this.stopping !== null) return;
    this.stopping = reason;
    log(30, `stopping (${reason})`);
    this.dropStandby();
    const s = this.current;
    if (s !== null && s.active && s.child.exitCode === null && s.child.signalCode === null) {
      s.leaving = 'stop';
      this.send(s, { t: 'stop', reason });
      return;
    }
    // Nobody serves: end the mount ourselves.
    this.end(0, `stopped (${reason}) while no server ran`);
  }

  private send(s: Server, m: ToServer): void {
    try {
      s.child.send(m);
    } catch {
      /* it is dying; its exit decides */
    }
  }

  private spawnServer(): Server {
    const [cmd, ...args] = this.o.command;
    const out = this.o.outputFd ?? 'inherit';
    const child = spawn(cmd!, args, {
      stdio: ['ignore', out, out, this.o.fuseFd, 'ipc'],
      env: { ...this.o.env, HANDLEFS_SERVE_FD: '3' },
    });
    const s: Server = { child, loaded: false, active: false, ready: false, leaving: null, ending: false, startTimer: null };
    child.on('message', (m: FromServer) => this.onMessage(s, m));
    child.on('exit', (code, signal) => this.onExit(s, code, signal));
    child.on('error', (err) => log(50, 'could not start a server', { err: err.message }));
    return s;
  }

  private go(s: Server, reason: string | null): void {
    s.active = true;
    if (reason !== null) {
      this.info = { ...this.info, restarts: this.info.restarts + 1, lastRestart: { reason, at: new Date().toISOString() } };
    }
    this.info = { ...this.info, generation: this.info.generation + 1 };
    const held = [...this.nsCopies.entries()].map(([k, { type, inum, nsId }]) => {
      const opens = this.nsOpens.get(k) ?? 0;
      return opens > 0 ? { type, inum, nsId, opens } : { type, inum, nsId };
    });
    const message: ToServer = { t: 'go', resume: this.conn, keeper: this.info, held };
    s.startTimer = setTimeout(() => {
      log(50, `server ${s.child.pid} did not serve within ${this.o.startTimeoutMs} ms; killing it`);
      s.child.kill('SIGKILL');
    }, this.o.startTimeoutMs);
    if (s.loaded) this.send(s, message);
    else s.child.once('message', () => this.send(s, message));
  }

  private onMessage(s: Server, m: FromServer): void {
    switch (m.t) {
      case 'loaded':
        s.loaded = true;
        return;
      case 'init':
        this.conn = m.conn;
        this.recordDevice();
        if (this.o.initPath) {
          try {
            fs.writeFileSync(this.o.initPath, `${JSON.stringify(m.conn)}\n`, { mode: 0o600 });
          } catch (err) {
            log(40, 'could not write the INIT parameters', { path: this.o.initPath, err: (err as Error).message });
          }
        }
        return;
      case 'ready':
        s.ready = true;
        if (s.startTimer) clearTimeout(s.startTimer);
        s.startTimer = null;
        if (!this.firstAnswered) {
          this.firstAnswered = true;
          this.o.onReady?.({ ready: true });
        }
        // Prepare the next one only once this one serves: they would compete for the CPU.
        if (this.o.standby && this.standby === null && this.stopping === null) this.standby = this.spawnServer();
        return;
      case 'refused':
        if (!this.firstAnswered) {
          this.firstAnswered = true;
          this.o.onReady?.({ ready: false, code: m.code, message: m.message, ...(m.hint !== undefined && { hint: m.hint }) });
        }
        s.ending = true;
        return;
      case 'ending':
        s.ending = true;
        return;
      case 'drained':
        // Its store is closed (the lock is free): the successor need not wait for the exit.
        if (s === this.current && s.leaving === 'drain') this.takeOver('restart');
        return;
      case 'ns-hold':
        this.holdCopy(s, m);
        return;
      case 'ns-release':
        // A draining server lets go of everything: its successor takes those over instead.
        if (s === this.current && s.leaving !== 'drain') this.releaseCopy(`${m.type}:${m.inum}`);
        return;
      case 'ns-opens': {
        if (s !== this.current || !Number.isSafeInteger(m.opens) || m.opens < 0) return;
        const k = `${m.type}:${m.inum}`;
        if (m.opens === 0) this.nsOpens.delete(k);
        else if (this.nsOpens.has(k) || this.nsOpens.size < MAX_POLLERS) this.nsOpens.set(k, m.opens);
        return;
      }
      case 'poll':
        if (s !== this.current || !Number.isSafeInteger(m.kh) || m.kh < 0) return;
        this.pollers.delete(m.kh);
        if (this.pollers.size >= MAX_POLLERS) this.pollers.delete(this.pollers.values().next().value as number);
        this.pollers.add(m.kh);
        return;
    }
  }

  /** Takes its own copy of a namespace descriptor the server holds (checked to be that namespace). */
  private holdCopy(s: Server, m: Extract<FromServer, { t: 'ns-hold' }>): void {
    const k = `${m.type}:${m.inum}`;
    if (this.nsCopies.has(k) || this.closed || !Number.isSafeInteger(m.fd) || m.fd < 0) return;
    let fd: number;
    try {
      fd = fs.openSync(`/proc/${s.child.pid}/fd/${m.fd}`, 'r');
    } catch (err) {
      log(40, 'could not take a copy of a namespace descriptor', { type: m.type, inum: m.inum, err: (err as Error).message });
      return;
    }
    let ino = -1;
    try {
      ino = fs.fstatSync(fd).ino;
    } catch {
      /* checked below */
    }
    if (ino !== m.inum) {
      fs.closeSync(fd); // the server closed it and the number now names something else
      return;
    }
    this.nsCopies.set(k, { type: m.type, inum: m.inum, nsId: m.nsId, fd });
  }

  private releaseCopy(k: string): void {
    const c = this.nsCopies.get(k);
    if (c === undefined) return;
    this.nsCopies.delete(k);
    this.nsOpens.delete(k);
    try {
      fs.closeSync(c.fd);
    } catch {
      /* already closed */
    }
  }

  private onExit(s: Server, code: number | null, signal: NodeJS.Signals | null): void {
    if (s.startTimer) clearTimeout(s.startTimer);
    if (s === this.standby) {
      this.standby = null;
      if (s.leaving === null && this.stopping === null) log(40, 'the standby server exited', { server: s.child.pid, code, signal });
      return;
    }
    if (s !== this.current) return;
    const how = signal !== null ? `signal ${signal}` : `exit ${code}`;
    if (this.stopping !== null || s.ending || s.leaving === 'stop' || (code === 0 && s.leaving !== 'drain')) {
      this.end(code ?? 0, `server ${s.child.pid} ended (${how})`);
      return;
    }
    if (!this.firstAnswered) {
      this.firstAnswered = true;
      this.o.onReady?.({ ready: false, code: code ?? 1, message: `the server exited (${how}) before the mount was ready` });
      this.end(code || 1, `the first server failed to start (${how})`);
      return;
    }
    if (s.leaving === 'drain') {
      this.afterChannel(s, () => this.takeOver('restart'));
      return;
    }
    // A crash. Nothing cached may outlive the gap, and what the dead one read comes back.
    const epoch = notify(this.o.fuseFd, NOTIFY_INC_EPOCH);
    const resend = notify(this.o.fuseFd, NOTIFY_RESEND);
    const now = Date.now();
    this.crashes.push(now);
    while (this.crashes.length > 0 && this.crashes[0]! < now - this.o.crashWindowMs) this.crashes.shift();
    const reason = `crash: server ${s.child.pid} ${how}`;
    log(50, `server died (${how})`, { server: s.child.pid, crashesInWindow: this.crashes.length, incEpoch: epoch, resend });
    if (this.crashes.length >= this.o.maxCrashes) {
      this.giveUp(`${this.crashes.length} crashes in ${Math.round(this.o.crashWindowMs / 1000)} s (last: ${how})`);
      return;
    }
    this.afterChannel(s, () => this.takeOver(reason));
  }

  /**
   * Runs `then` once every message the dead server wrote has been read: its exit can be seen
   * before the last of them (a namespace hold, open files, a poll handle), and what the successor
   * is told to take over must include them. Bounded: a channel that does not close in 200 ms is
   * not waited for.
   */
  private afterChannel(s: Server, then: () => void): void {
    if (!s.child.connected) {
      then();
      return;
    }
    let done = false;
    const go = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      then();
    };
    const timer = setTimeout(go, 200);
    s.child.once('disconnect', go);
  }

  /** The standby (or a new server) serves from now on. */
  private takeOver(reason: string): void {
    const next = this.standby ?? this.spawnServer();
    this.standby = null;
    this.current = next;
    // Clients waiting in poll(2) poll again; their requests queue for the successor.
    const woken = this.pollers.size;
    for (const kh of this.pollers) notify(this.o.fuseFd, NOTIFY_POLL, kh);
    this.pollers.clear();
    log(30, `server ${next.child.pid} takes over (${reason})`, woken > 0 ? { pollersWoken: woken } : {});
    this.go(next, reason);
  }

  /** Notes the mount's device and records which mountpoint serves it (a lazy umount hides the mountpoint). */
  private recordDevice(): void {
    if (this.device !== undefined) return;
    const conn = fuseConnectionOf(this.o.mountpoint);
    if (conn === undefined) return;
    this.device = `0:${conn}`;
    if (!this.o.deviceRecordPath) return;
    const file = this.o.deviceRecordPath(this.device);
    try {
      fs.writeFileSync(file, `${this.o.mountpoint}\n`, { mode: 0o644 });
      this.deviceRecord = file;
    } catch (err) {
      log(40, 'could not record the mount\'s device', { path: file, err: (err as Error).message });
    }
  }

  /** The fusectl connection of the mount: by its mountpoint, else (after a lazy umount) the device noted at INIT. */
  private connection(): number | undefined {
    return fuseConnectionOf(this.o.mountpoint) ?? (this.device !== undefined ? Number(this.device.split(':')[1]) : undefined);
  }

  private giveUp(why: string): void {
    log(60, `giving up: ${why}; aborting the connection and detaching the mount (clients get ENOTCONN, none waits)`);
    this.stopping = 'gave up';
    this.dropStandby();
    const conn = this.connection();
    if (conn !== undefined) {
      try {
        fs.writeFileSync(`/sys/fs/fuse/connections/${conn}/abort`, '1');
      } catch (err) {
        log(40, 'could not abort the connection through fusectl', { conn, err: (err as Error).message });
      }
    }
    this.end(EXIT_GAVE_UP, 'gave up');
  }

  private dropStandby(): void {
    const s = this.standby;
    this.standby = null;
    if (s !== null) {
      s.leaving = 'stop';
      s.child.kill('SIGKILL');
    }
  }

  /** The mount ends: close the device, detach what is left, and finish. */
  private end(code: number, why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.dropStandby();
    try {
      fs.closeSync(this.o.fuseFd);
    } catch {
      /* already closed */
    }
    if (fuseConnectionOf(this.o.mountpoint) !== undefined) {
      const r = spawnSync('umount', ['-i', '-c', '-l', this.o.mountpoint], { stdio: 'ignore', timeout: 10_000 });
      log(r.status === 0 ? 30 : 50, r.status === 0 ? 'detached the mount' : 'could not detach the mount', { mountpoint: this.o.mountpoint });
    }
    if (this.o.initPath) fs.rmSync(this.o.initPath, { force: true });
    if (this.o.socketPath) fs.rmSync(this.o.socketPath, { force: true });
    if (this.deviceRecord) fs.rmSync(this.deviceRecord, { force: true });
    for (const k of [...this.nsCopies.keys()]) this.releaseCopy(k);
    log(30, `keeper ends: ${why}`, { code, restarts: this.info.restarts });
    this.resolveDone(code);
  }
}
