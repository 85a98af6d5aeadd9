/**
 * scale benchmark (issue 13): the daemon's memory with many live handles (RSS, not only heap) and
 * the time to restore them at start.
 *
 *   node --import tsx bench/scale/run.ts [--procs 10000,100000] [--threads 2] [--idle-seconds 11]
 *                                        [--sample 2000] [--ls-over-limit] [--write]
 *
 * For each count N:
 *   - N live processes from bench/scale/procs.c (clone() with CLONE_VM: a task and a pid each,
 *     ~30 KB of kernel memory, no address space of their own). When N does not fit under
 *     /proc/sys/kernel/pid_max, pid_max is raised for the run and restored in every outcome.
 *   - a freshly started service (`handlefs mount MNT --state FILE`, new state file, default
 *     timeouts 3600 s: the kernel keeps every name it was given), then `ls -l MNT/pid` makes
 *     every process a live handle (timed: registration); a stat of each child's MNT/pid/<pid>
 *     checks that all N answer and records their inode numbers.
 *   - memory: VmRSS and VmHWM of the serving process, the keeper and the keeper's standby;
 *     heap and external memory from `handlefs status --prometheus`; descriptors of the serving
 *     process; the state file with its WAL. CPU of the serving process over an idle window
 *     (the periodic sweep).
 *   - restore, (a) `handlefs restart MNT`: from the command to the new process answering a stat
 *     of a long-known handle (the kernel's cached names are invalid after the hand-over, so the
 *     stat reaches the new process) and of a process it never saw; then memory, idle CPU, and a
 *     stat of all N (each adopted by the new process) with every inode number compared.
 *   - restore, (b) cold start: `handlefs umount`, then `handlefs mount` again with the same
 *     state file while the processes live: from the mount command to the first answer (a stat
 *     of a long-known handle), then a new process; memory, idle CPU, and a stat of all N
 *     (looked up afresh) with every inode number compared.
 *
 * Past the service's descriptors (one per held process handle: RLIMIT_NOFILE), the service
 * registers what fits (a stat of each) and rows for the other processes are written into its state
 * with its own store code while it is down (pid, pidfs inode number, boot id: what it would have
 * written); the restores then stat --sample handles, half of each kind. `--ls-over-limit` lists
 * them all anyway, to show what happens past the limit. `handlefs restart` failing (a control
 * socket that does not answer) is recorded and the keeper is sent SIGHUP instead.
 *
 * Needs root and /dev/fuse; builds dist/ with tsup when dist/cli/main.js is missing and the C
 * helper into bench/out/scale/. --write puts the report in bench/out/scale/report.md. Every
 * child is stopped, every mount removed, the temporary directory deleted and pid_max restored in
 * every outcome.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../../src/log.js';
import { stateRecordDirs } from '../../src/service/service.js';
import { openSqliteStore } from '../../src/store/index.js';
import { PROCESS_KIND } from '../../src/tree/process-handles.js';
import {
  arg,
  buildC,
  cleanupAll,
  cpuTimes,
  ensureTools,
  exited,
  flag,
  listArg,
  forceUnmount,
  machine,
  mountEntry,
  requireRootAndFuse,
  root,
  runMain,
  sleep,
  tempDir,
  track,
  untrack,
  writeReport,
} from '../common/harness.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const cliMain = path.join(root, 'dist/cli/main.js');

const COUNTS = listArg('procs', [10000, 100000]);
const THREADS = arg('threads', 2);
const IDLE_SECONDS = arg('idle-seconds', 11);
const WRITE = flag('write');
/** Register with `ls -l` even when N exceeds the service's descriptors (shows what happens past the limit). */
const LS_OVER_LIMIT = flag('ls-over-limit');
/** Past the descriptors: how many restored handles the restore passes stat (first lookups compete with the sweep). */
const SAMPLE = arg('sample', 2000);

// ---------- pid_max: raised for the run, restored in every outcome ----------

const PID_MAX = '/proc/sys/kernel/pid_max';
let pidMaxBefore: number | null = null;
const notes: string[] = [];

function livePids(): number {
  return fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x)).length;
}

/** Raises pid_max so that n more processes fit with room to spare (never lowers it). */
function ensurePidRoom(n: number): void {
  const current = Number(fs.readFileSync(PID_MAX, 'utf8').trim());
  const need = Math.ceil((n + livePids()) * 1.25) + 4096;
  if (need <= current) return;
  const raised = 2 ** Math.ceil(Math.log2(need));
  pidMaxBefore ??= current;
  fs.writeFileSync(PID_MAX, String(raised));
  const note = `kernel.pid_max raised from ${pidMaxBefore} to ${raised} for the run (restored at the end)`;
  console.error(note);
  if (!notes.includes(note)) notes.push(note);
}

function restorePidMax(): void {
  if (pidMaxBefore === null) return;
  try {
    fs.writeFileSync(PID_MAX, String(pidMaxBefore));
    console.error(`kernel.pid_max restored to ${pidMaxBefore}`);
  } catch (e) {
    console.error(`could not restore kernel.pid_max to ${pidMaxBefore}: ${String(e)}`);
  }
  pidMaxBefore = null;
}

// ---------- serving processes: killed on exit (the keeper's death alone leaves them serving) ----------

const servers = new Set<number>();

function killServers(): void {
  for (const pid of servers) {
    try {
      if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(path.join(root, 'dist'))) process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  servers.clear();
}

// Registered after the harness's own exit handler: children are killed first, then pid_max goes back.
process.on('exit', () => {
  killServers();
  restorePidMax();
});

// ---------- the process owner ----------

class Procs {
  private lines: string[] = [];
  private waiting: ((line: string) => void) | null = null;
  pids: number[] = [];

  private constructor(readonly child: ChildProcess) {
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w(line);
      } else this.lines.push(line);
    });
  }

  private next(timeoutMs: number): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiting = null;
        reject(new Error('procs helper did not answer'));
      }, timeoutMs);
      this.waiting = (line) => {
        clearTimeout(t);
        resolve(line);
      };
    });
  }

  static async start(bin: string, n: number, pidFile: string): Promise<Procs> {
    const child = spawn(bin, [String(n), pidFile], { stdio: ['pipe', 'pipe', 'inherit'] });
    track(child);
    const p = new Procs(child);
    const line = await p.next(300_000);
    if (!line.startsWith('ready ')) throw new Error(`procs helper: ${line}`);
    p.pids = fs.readFileSync(pidFile, 'utf8').trim().split('\n').map(Number);
    return p;
  }

  async cmd(line: string, timeoutMs = 1_800_000): Promise<string> {
    this.child.stdin!.write(`${line}\n`);
    const out = await this.next(timeoutMs);
    if (out.startsWith('error')) throw new Error(`procs helper: ${out}`);
    return out;
  }

  async spawnOne(): Promise<number> {
    return Number((await this.cmd('spawn')).split(' ')[1]);
  }

  /** stat() of every child's MNT/pid/<pid>: time, failures and the inode numbers by pid. */
  async statAll(mnt: string, threads: number, outFile: string, from = 0, to = -1): Promise<{ ok: number; failed: number; ms: number; errno: number; firstPid: number; inos: Map<number, number> }> {
    const f = (await this.cmd(`stat ${mnt} ${threads} ${outFile} ${from} ${to}`)).split(' ');
    const inos = new Map<number, number>();
    for (const l of fs.readFileSync(outFile, 'utf8').trim().split('\n')) {
      const [pid, ino] = l.split(' ');
      inos.set(Number(pid), Number(ino));
    }
    return { ok: Number(f[1]), failed: Number(f[2]), ms: Number(f[3]), errno: Number(f[4]), firstPid: Number(f[5]), inos };
  }

  async stop(): Promise<void> {
    this.child.stdin!.write('quit\n');
    if (!(await exited(this.child, 120_000))) this.child.kill('SIGKILL');
    untrack(this.child);
  }
}

// ---------- the handlefs service ----------

interface Service {
  keeper: ChildProcess;
  mnt: string;
  runtime: string;
  state: string;
}

/** The keeper's child that has the state file open: the serving process (the standby opens it only when told to go). */
function servingPid(s: Service): number | undefined {
  for (const pid of childrenOf(s.keeper.pid ?? 0)) {
    try {
      for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
        if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === s.state) {
          servers.add(pid);
          return pid;
        }
      }
    } catch {
      /* gone */
    }
  }
  return undefined;
}

function env(runtime: string): NodeJS.ProcessEnv {
  return { ...process.env, HANDLEFS_RUNTIME_DIR: runtime };
}

function startMount(mnt: string, state: string, runtime: string, log: string): Service {
  const fd = fs.openSync(log, 'a');
  const keeper = spawn(process.execPath, [cliMain, 'mount', mnt, '--state', state], { cwd: root, env: env(runtime), stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  track(keeper, mnt);
  return { keeper, mnt, runtime, state };
}

/** Polls until MNT/rel answers a stat (first answer); returns its inode number. */
async function firstAnswer(s: Service, rel: string, timeoutMs = 120_000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (s.keeper.exitCode !== null || s.keeper.signalCode !== null) throw new Error(`handlefs exited early (${s.keeper.exitCode ?? s.keeper.signalCode})`);
    if (mountEntry(s.mnt) !== undefined) {
      try {
        return fs.statSync(path.join(s.mnt, rel)).ino;
      } catch {
        /* not yet */
      }
    }
    await sleep(5);
  }
  throw new Error(`handlefs did not answer at ${s.mnt} within ${timeoutMs / 1000} s`);
}

/** `handlefs umount`; returns its wall time (ms). */
async function stopService(s: Service): Promise<number> {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [cliMain, 'umount', s.mnt], { env: env(s.runtime), encoding: 'utf8', timeout: 120_000 });
  const ms = performance.now() - t0;
  if (r.status !== 0) console.error(`warning: handlefs umount exited ${r.status}: ${r.stderr?.trim()}`);
  if (!(await exited(s.keeper, 30_000))) {
    console.error('warning: handlefs did not exit after umount; killing it');
    s.keeper.kill('SIGKILL');
    await exited(s.keeper, 5000);
  }
  killServers();
  forceUnmount(s.mnt);
  untrack(s.keeper, s.mnt);
  return ms;
}

interface Status {
  pid: number;
  keeperPid: number | null;
  kinds: Record<string, { live: number; instantiated: number }>;
  store: { bytes: number };
}

function status(s: Service): Status {
  const out = execFileSync(process.execPath, [cliMain, 'status', s.mnt, '--json'], { env: env(s.runtime), encoding: 'utf8', timeout: 60_000 });
  const st = JSON.parse(out) as Status;
  servers.add(st.pid);
  return st;
}

/** Heap figures from `status --prometheus` (bytes), by metric name without the prefix. */
function heap(s: Service): Record<string, number> {
  const out = execFileSync(process.execPath, [cliMain, 'status', s.mnt, '--prometheus'], { env: env(s.runtime), encoding: 'utf8', timeout: 60_000 });
  const want = ['nodejs_heap_size_used_bytes', 'nodejs_heap_size_total_bytes', 'nodejs_external_memory_bytes', 'process_resident_memory_bytes'];
  const r: Record<string, number> = {};
  for (const line of out.split('\n')) {
    const m = /^handlefs_(\w+)(?:\{[^}]*\})? (\S+)/.exec(line);
    if (m && want.includes(m[1]!)) r[m[1]!] = Number(m[2]);
  }
  return r;
}

function memKiB(pid: number | null | undefined): { rss: number; hwm: number } {
  if (!pid) return { rss: NaN, hwm: NaN };
  try {
    const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const get = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(st)?.[1] ?? NaN);
    return { rss: get('VmRSS'), hwm: get('VmHWM') };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

function childrenOf(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function fdCount(pid: number): number {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

interface Snapshot {
  phase: string;
  /** Process handles in the table (live objects: restored rows included) and those the kernel holds. */
  rows: number;
  handles: number;
  server: { rss: number; hwm: number };
  keeper: { rss: number; hwm: number };
  standby: { rss: number; hwm: number };
  heapUsed: number;
  heapTotal: number;
  external: number;
  fds: number;
  stateBytes: number;
  /** CPU seconds of the serving process over the idle window before the snapshot. */
  idleCpu: number;
}

/** Waits IDLE_SECONDS (one sweep or more) measuring the serving process's CPU, then takes a snapshot. */
async function snapshot(s: Service, phase: string, idle = true): Promise<Snapshot> {
  try {
    return await snapshotOrThrow(s, phase, idle);
  } catch (e) {
    const why = (e as { stderr?: string }).stderr?.trim().split('\n')[0] ?? String(e);
    console.error(`snapshot "${phase}": ${why}`);
    const nan = { rss: NaN, hwm: NaN };
    const server = servingPid(s);
    return { phase: `${phase} — status failed: ${why}`, rows: NaN, handles: NaN, server: memKiB(server), keeper: memKiB(s.keeper.pid), standby: nan, heapUsed: NaN, heapTotal: NaN, external: NaN, fds: server ? fdCount(server) : NaN, stateBytes: NaN, idleCpu: NaN };
  }
}

async function snapshotOrThrow(s: Service, phase: string, idle: boolean): Promise<Snapshot> {
  let st = status(s);
  let idleCpu = NaN;
  if (idle) {
    const c0 = cpuTimes(st.pid);
    await sleep(IDLE_SECONDS * 1000);
    const c1 = cpuTimes(st.pid);
    idleCpu = c1.user + c1.sys - c0.user - c0.sys;
    st = status(s);
  }
  const h = heap(s);
  const standby = childrenOf(st.keeperPid ?? 0).find((p) => p !== st.pid);
  return {
    phase,
    rows: st.kinds['process']?.live ?? 0,
    handles: st.kinds['process']?.instantiated ?? 0,
    server: memKiB(st.pid),
    keeper: memKiB(st.keeperPid),
    standby: memKiB(standby),
    heapUsed: h['nodejs_heap_size_used_bytes'] ?? NaN,
    heapTotal: h['nodejs_heap_size_total_bytes'] ?? NaN,
    external: h['nodejs_external_memory_bytes'] ?? NaN,
    fds: fdCount(st.pid),
    stateBytes: st.store.bytes,
    idleCpu,
  };
}

function statMs(p: string): { ms: number; ino: number } {
  const t0 = performance.now();
  const ino = fs.statSync(p).ino;
  return { ms: performance.now() - t0, ino };
}

// ---------- one count ----------

/** The soft RLIMIT_NOFILE of a process: every live process handle costs the service one descriptor. */
function nofile(pid: number): number {
  const line = fs.readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  const v = (line ?? '').split(/\s{2,}/)[1];
  return v === 'unlimited' ? Infinity : Number(v);
}

interface Restore {
  /** How it was started. */
  via: string;
  /** Command (restart, or mount) to the answers, ms. */
  command: number;
  oldStat: number;
  newStat: number;
  total: number;
  oldInoKept: boolean;
  /** stat of the handles the kernel held before (all N when they fit): count, time (ms), failures, inode numbers that changed. */
  all: { count: number; ms: number; failed: number; changed: number };
}

interface PerCount {
  n: number;
  machineProcs: number;
  fdLimit: number;
  /** Descriptors left for process handles: the limit minus the service's own and the machine's other processes, with a margin. */
  room: number;
  register: { lsMs: number; lsEio: number; statMs: number; ok: number; failed: number; errno: number };
  /** When N does not fit in the descriptors: rows for the processes the service could not hold, written with the service's store code. */
  seed?: { rows: number; ms: number; firstPartMs: number; firstPart: number; failed: number };
  /** `handlefs restart` failing (e.g. the control socket not answering); the keeper was then sent SIGHUP directly. */
  restartCliError?: string;
  snaps: Snapshot[];
  restart?: Restore;
  umountMs?: number;
  cold?: Restore;
  load: string[];
}

/** `ls -l` of the directory: wall time (ms) and how many entries answered EIO (on stderr). */
function timeLs(dir: string): { ms: number; eio: number } {
  const t0 = performance.now();
  const r = spawnSync('sh', ['-c', `ls -l ${dir} >/dev/null`], { env: { ...process.env, LC_ALL: 'C' }, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', maxBuffer: 256 << 20 });
  const ms = performance.now() - t0;
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  const eio = lines.filter((l) => /Input\/output error/.test(l)).length;
  const other = lines.filter((l) => !/Input\/output error|No such (file or directory|process)/.test(l));
  if (r.status !== 0 && (other.length > 0 || r.stderr === '')) throw new Error(`ls -l ${dir}: exit ${r.status}: ${other.slice(0, 3).join('; ')}`);
  return { ms, eio };
}

async function runCount(n: number, bins: { procs: string }, base: string, log: string): Promise<PerCount> {
  ensurePidRoom(n);
  const t0 = performance.now();
  const procs = await Procs.start(bins.procs, n, path.join(base, 'pids'));
  console.error(`n=${n}: ${procs.pids.length} children in ${((performance.now() - t0) / 1000).toFixed(1)} s (${livePids()} processes on the machine)`);
  const r: PerCount = {
    n,
    machineProcs: livePids(),
    fdLimit: NaN,
    room: NaN,
    register: { lsMs: NaN, lsEio: NaN, statMs: NaN, ok: NaN, failed: NaN, errno: NaN },
    snaps: [],
    load: [],
  };
  const mnt = path.join(base, `m${n}`);
  const runtime = path.join(base, `run${n}`);
  fs.mkdirSync(mnt);
  fs.mkdirSync(runtime);
  const state = path.join(base, `state-${n}.db`);
  const loadNow = (what: string) => r.load.push(`${what}: ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  const statFile = path.join(base, 'inos');
  /** Inode numbers by pid, from every pass that got one (the reference the restores are checked against). */
  const known = new Map<number, number>();
  const remember = (inos: Map<number, number>) => {
    for (const [pid, ino] of inos) if (ino !== 0 && !known.has(pid)) known.set(pid, ino);
  };
  /** The children whose handles the kernel holds (or the restore passes stat): indices [from, to) of procs.pids. */
  let held = { from: 0, to: n };
  const statHeld = async () => {
    const c = await procs.statAll(mnt, THREADS, statFile, held.from, held.to);
    let changed = 0;
    for (const [pid, ino] of c.inos) if (ino !== 0 && known.has(pid) && known.get(pid) !== ino) changed++;
    remember(c.inos);
    return { count: held.to - held.from, ms: c.ms, failed: c.failed, changed };
  };
  const oldHandle = () => {
    const mid = (held.from + held.to) >> 1;
    const pid = procs.pids.slice(mid).find((p) => known.has(p)) ?? procs.pids.find((p) => known.has(p))!;
    return { pid, ino: known.get(pid)! };
  };

  /** (a) `handlefs restart` (or SIGHUP to the keeper when the command cannot ask the service) until the new process answers. */
  const restart = async (s: Service): Promise<void> => {
    const old = oldHandle();
    const newPid = await procs.spawnOne();
    const before = servingPid(s);
    const a0 = performance.now();
    const rr = spawnSync(process.execPath, [cliMain, 'restart', mnt], { env: env(runtime), encoding: 'utf8', timeout: 120_000 });
    let via = '`handlefs restart`';
    if (rr.status !== 0) {
      r.restartCliError = `exit ${rr.status}: ${rr.stderr.trim().split('\n')[0]} (after ${(performance.now() - a0).toFixed(0)} ms)`;
      console.error(`n=${n}: handlefs restart failed (${r.restartCliError}); SIGHUP to the keeper instead`);
      via = 'SIGHUP to the keeper (`handlefs restart` failed)';
      process.kill(s.keeper.pid!, 'SIGHUP');
    }
    // Served by another process: the old one has let the state file go and the new one has it open.
    for (let now = servingPid(s); now === undefined || now === before; now = servingPid(s)) {
      if (performance.now() - a0 > 300_000) throw new Error('no new serving process within 300 s');
      await sleep(20);
    }
    const command = rr.status === 0 ? performance.now() - a0 - 0 : performance.now() - a0;
    const o = statMs(path.join(mnt, 'pid', String(old.pid)));
    const nw = statMs(path.join(mnt, 'pid', String(newPid)));
    const total = performance.now() - a0;
    console.error(`n=${n}: restart ${command.toFixed(0)} ms, then old stat ${o.ms.toFixed(1)} ms, new ${nw.ms.toFixed(1)} ms (${rr.stdout.trim()})`);
    r.snaps.push(await snapshot(s, 'after `handlefs restart`, at the first answers', false));
    r.snaps.push(await snapshot(s, 'after `handlefs restart`, idle'));
    const all = await statHeld();
    r.restart = { via, command, oldStat: o.ms, newStat: nw.ms, total, oldInoKept: o.ino === old.ino, all };
    console.error(`n=${n}: after restart, stat of ${all.count}: ${all.ms.toFixed(0)} ms, ${all.failed} failed, ${all.changed} numbers changed`);
    r.snaps.push(await snapshot(s, `after \`handlefs restart\` and a stat of ${all.count}`, false));
    loadNow('restarted');
  };

  /** (b) cold start: mount with the existing state while the processes live, to the first answer. */
  const coldStart = async (): Promise<Service> => {
    const old = oldHandle();
    const newPid = await procs.spawnOne();
    const a0 = performance.now();
    const s = startMount(mnt, state, runtime, log);
    const firstIno = await firstAnswer(s, `pid/${old.pid}`, 600_000);
    const command = performance.now() - a0;
    const nw = statMs(path.join(mnt, 'pid', String(newPid)));
    const total = performance.now() - a0;
    console.error(`n=${n}: cold start to first answer ${command.toFixed(0)} ms, new process ${nw.ms.toFixed(1)} ms`);
    r.snaps.push(await snapshot(s, 'cold start (mount over the same state), at the first answers', false));
    r.snaps.push(await snapshot(s, 'cold start, idle'));
    const all = await statHeld();
    r.cold = { via: `mount (the umount before it took ${r.umountMs?.toFixed(0) ?? '?'} ms)`, command, oldStat: NaN, newStat: nw.ms, total, oldInoKept: firstIno === old.ino, all };
    console.error(`n=${n}: after cold start, stat of ${all.count}: ${all.ms.toFixed(0)} ms, ${all.failed} failed, ${all.changed} numbers changed`);
    r.snaps.push(await snapshot(s, `cold start and a stat of ${all.count}`, false));
    loadNow('cold');
    return s;
  };

  let s: Service | null = null;
  try {
    s = startMount(mnt, state, runtime, log);
    await firstAnswer(s, 'pid');
    await sleep(1000);
    const st0 = status(s);
    r.fdLimit = nofile(st0.pid);
    r.room = Math.max(1000, r.fdLimit - fdCount(st0.pid) - (r.machineProcs - n) - 500);
    r.snaps.push(await snapshot(s, 'started, no handles', false));
    loadNow('start');

    if (n <= r.room || LS_OVER_LIMIT) {
      // Registration: every process a live handle (each costs the service one descriptor).
      const ls = timeLs(`${mnt}/pid`);
      r.register.lsMs = ls.ms;
      r.register.lsEio = ls.eio;
      const reg = await procs.statAll(mnt, THREADS, statFile);
      remember(reg.inos);
      Object.assign(r.register, { statMs: reg.ms, ok: reg.ok, failed: reg.failed, errno: reg.errno });
      console.error(
        `n=${n}: ls -l ${(ls.ms / 1000).toFixed(1)} s (${ls.eio} EIO); then stat of all ${reg.ms.toFixed(0)} ms, ${reg.ok} ok, ${reg.failed} failed (first: pid ${reg.firstPid}, errno ${reg.errno}); descriptor limit ${r.fdLimit}, room ${r.room}`,
      );
      r.snaps.push(await snapshot(s, `after \`ls -l\` of ${n} processes`));
      loadNow('registered');
      await restart(s);
      r.umountMs = await stopService(s);
      s = null;
      s = await coldStart();
    } else {
      // More processes than descriptors: the service holds as many as fit (a stat of each); rows
      // for the others are written into the same state with the service's own store code (what
      // the service would have written: pid, pidfs inode number, this boot), while it is down.
      console.error(`n=${n}: more processes than the service's descriptors allow (limit ${r.fdLimit}, room ${r.room}): the service registers ${r.room}, the rest are written into its state`);
      held = { from: 0, to: r.room };
      const first = await statHeld();
      console.error(`n=${n}: stat of ${first.count} (fresh service): ${first.ms.toFixed(0)} ms, ${first.failed} failed`);
      r.snaps.push(await snapshot(s, `after a stat of ${first.count} processes (fresh service)`));
      loadNow('first part');
      r.umountMs = await stopService(s);
      s = null;
      const seed0 = performance.now();
      const incarnations = new Map<number, number>();
      const pf = path.join(base, 'pidfs');
      await procs.cmd(`pidfs ${pf}`);
      for (const l of fs.readFileSync(pf, 'utf8').trim().split('\n')) {
        const [pid, ino] = l.split(' ');
        incarnations.set(Number(pid), Number(ino));
      }
      const scope = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().toLowerCase();
      const missing = procs.pids.filter((p) => !known.has(p) && incarnations.has(p));
      process.env.HANDLEFS_RUNTIME_DIR = runtime; // the same restore records as the service's
      const store = openSqliteStore({ path: state, logger: silentLogger(), witness: stateRecordDirs() });
      try {
        const { start } = store.reserve(missing.length);
        missing.forEach((pid, j) => {
          store.put({ ino: start + j, generation: store.generation, kind: PROCESS_KIND, key: pid, incarnation: incarnations.get(pid)!, scope });
          known.set(pid, start + j);
        });
        await store.flush();
      } finally {
        store.close();
      }
      r.seed = { rows: missing.length, ms: performance.now() - seed0, firstPartMs: first.ms, firstPart: first.count, failed: first.failed };
      console.error(`n=${n}: ${missing.length} rows written in ${r.seed.ms.toFixed(0)} ms`);
      // The restore passes stat handles on both sides: registered by the service, and written.
      const half = Math.min(r.room, n - r.room, SAMPLE >> 1);
      held = { from: r.room - half, to: r.room + half };
      s = await coldStart();
      await restart(s);
    }
  } finally {
    if (s !== null) await stopService(s);
    const k0 = performance.now();
    await procs.stop();
    console.error(`n=${n}: children stopped in ${((performance.now() - k0) / 1000).toFixed(1)} s`);
  }
  return r;
}

// ---------- main and report ----------

async function main(): Promise<void> {
  requireRootAndFuse();
  ensureTools();
  const bins = buildC('scale', [{ name: 'procs', src: path.join(here, 'procs.c'), pthread: true }]);
  if (!fs.existsSync(cliMain)) {
    console.error('dist/cli/main.js missing: building with tsup...');
    execFileSync('npx', ['tsup'], { cwd: root, stdio: 'inherit' });
  }
  const t0 = Date.now();
  const base = tempDir('scale-');
  const log = path.join(base, 'handlefs.log');
  const results: PerCount[] = [];
  try {
    for (const n of COUNTS) {
      results.push(await runCount(n, { procs: bins.procs! }, base, log));
      report(results, t0); // partial figures survive a later failure
    }
  } finally {
    if (fs.existsSync(log)) {
      const warnings = fs.readFileSync(log, 'utf8').split('\n').filter((l) => /"level":(40|50|60)/.test(l));
      if (warnings.length > 0) console.error(`handlefs logged ${warnings.length} warning/error line(s), e.g.:\n${warnings.slice(0, 5).join('\n')}`);
    }
    cleanupAll();
    killServers();
    restorePidMax();
  }
  report(results, t0);
}

const mib = (kib: number) => (kib / 1024).toFixed(1);
const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

function report(results: PerCount[], t0: number): void {
  const L: string[] = [];
  const find = (r: PerCount, prefix: string) => r.snaps.find((x) => x.phase.startsWith(prefix));
  L.push('# Scale benchmark: memory with many live handles, restore at start (bench/scale)');
  L.push('');
  L.push(`Machine: ${machine()}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB. Run took ${((Date.now() - t0) / 1000).toFixed(0)} s. ${notes.join('; ')}`);
  L.push('');
  for (const r of results) L.push(`- ${r.n} processes: load average (1/5/15 min) at ${r.load.join('; ')}.`);
  L.push('');
  L.push('Registration (`ls -l MNT/pid`, fresh service and state), then a stat of every child (cached names answer from the kernel):');
  L.push('');
  L.push('| processes (on the machine) | service descriptor limit (room for handles) | `ls -l` (s) | µs per entry | entries answering EIO | stat of all N (ms) | ok | failed (errno) |');
  L.push('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of results) {
    const g = r.register;
    if (Number.isNaN(g.lsMs)) L.push(`| ${r.n} (${r.machineProcs}) | ${r.fdLimit} (${r.room}) | not run: more processes than descriptors | | | | | |`);
    else L.push(`| ${r.n} (${r.machineProcs}) | ${r.fdLimit} (${r.room}) | ${(g.lsMs / 1000).toFixed(1)} | ${((g.lsMs * 1000) / r.machineProcs).toFixed(0)} | ${g.lsEio} | ${g.statMs.toFixed(0)} | ${g.ok} | ${g.failed}${g.failed ? ` (${g.errno})` : ''} |`);
  }
  for (const r of results) {
    if (r.seed)
      L.push(
        `\n${r.n} processes do not fit in the service's ${r.fdLimit} descriptors: the service registered ${r.seed.firstPart} (a stat of each, ${THREADS} threads, fresh state: ${(r.seed.firstPartMs / 1000).toFixed(1)} s, ${r.seed.failed} failed); rows for the other ${r.seed.rows} were written into its state with its own store code while it was down (${(r.seed.ms / 1000).toFixed(1)} s). The restore passes stat ${2 * Math.min(r.room, r.n - r.room, SAMPLE >> 1)} handles, half registered by the service and half written.`,
      );
    if (r.restartCliError) L.push(`\n${r.n} processes: \`handlefs restart\` failed (${r.restartCliError}); the keeper was sent SIGHUP directly.`);
  }
  L.push('');
  L.push('Memory (MiB; RSS = VmRSS, HWM = VmHWM; heap from `status --prometheus`, not after a GC). Rows: process handles in the table (restored rows included); held: those the kernel holds. Idle CPU: seconds the serving process used over an idle window:');
  L.push('');
  L.push(`| processes | phase | rows / held | server RSS / HWM | heap used / total | external | keeper RSS | standby RSS | server fds | state file (MiB) | idle CPU (s / ${IDLE_SECONDS} s) |`);
  L.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of results) {
    for (const s of r.snaps) {
      L.push(
        `| ${r.n} | ${s.phase} | ${s.rows} / ${s.handles} | ${mib(s.server.rss)} / ${mib(s.server.hwm)} | ${mb(s.heapUsed)} / ${mb(s.heapTotal)} | ${mb(s.external)} | ${mib(s.keeper.rss)} | ${mib(s.standby.rss)} | ${s.fds} | ${mb(s.stateBytes)} | ${Number.isNaN(s.idleCpu) ? '' : s.idleCpu.toFixed(2)} |`,
      );
    }
  }
  L.push('');
  L.push('Per handle (bytes): the serving process after registration minus the fresh service, over the handles the kernel holds; after a cold start (restored rows, none held yet), over the rows:');
  L.push('');
  L.push('| processes | held | RSS per held handle | heap used per held handle | rows restored | RSS per restored row (cold start, idle) | heap per restored row |');
  L.push('| --- | --- | --- | --- | --- | --- | --- |');
  for (const r of results) {
    const base = r.snaps[0]!;
    const reg = find(r, 'after `ls -l`') ?? find(r, 'after a stat of');
    const cold = find(r, 'cold start, idle');
    if (!reg) continue;
    const line = [`${r.n}`, `${reg.handles}`, (((reg.server.rss - base.server.rss) * 1024) / reg.handles).toFixed(0), ((reg.heapUsed - base.heapUsed) / reg.handles).toFixed(0)];
    if (cold) line.push(`${cold.rows}`, (((cold.server.rss - base.server.rss) * 1024) / cold.rows).toFixed(0), ((cold.heapUsed - base.heapUsed) / cold.rows).toFixed(0));
    else line.push('', '', '');
    L.push(`| ${line.join(' | ')} |`);
  }
  L.push('');
  L.push('Restore at start: (a) `handlefs restart MNT` until the new process answers; (b) `handlefs umount`, then `handlefs mount` with the same state, to the first answer. Then a stat of every handle the kernel held before (each adopted or looked up afresh by the new process), inode numbers compared:');
  L.push('');
  L.push('| processes | rows | how | command (ms) | then stat of a long-known handle (ms) | then stat of a new process (ms) | command → both answered (ms) | long-known number kept | stat of the held handles afterwards (n, s) | failed | numbers changed |');
  L.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of results) {
    const rows = find(r, 'cold start, idle')?.rows ?? NaN;
    const row = (how: string, x: Restore | undefined) => {
      if (!x) return;
      L.push(
        `| ${r.n} | ${rows} | ${how} | ${x.command.toFixed(0)} | ${Number.isNaN(x.oldStat) ? '(the first answer)' : x.oldStat.toFixed(1)} | ${x.newStat.toFixed(1)} | ${x.total.toFixed(0)} | ${x.oldInoKept ? 'yes' : '**no**'} | ${x.all.count}, ${(x.all.ms / 1000).toFixed(1)} | ${x.all.failed} | ${x.all.changed} |`,
      );
    };
    row(`(a) ${r.restart?.via ?? ''}`, r.restart);
    row(`(b) cold start: ${r.cold?.via ?? ''}`, r.cold);
  }
  writeReport('scale', L, WRITE);
}

runMain(main);
