/**
 * Shared helpers of the FUSE benchmarks (bench/fuse-stat, bench/tree-stat): arguments, tools and
 * C builds (into bench/out/<bench>/), servers and mounts with cleanup in every outcome (including
 * Ctrl-C), CPU placement, the stat client, medians and the report.
 */
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const commonDir = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(commonDir, '../..');

// ---------- arguments ----------

/** `--name VALUE` as a number, or def. */
export function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

/** `--name a,b,c` as numbers, or `def`. */
export function listArg(name: string, def: number[]): number[] {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]!.split(',').map(Number) : def;
}

/** Whether `--name` is present. */
export function flag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}

export function requireRootAndFuse(): void {
  if (process.getuid?.() !== 0) throw new Error('the benchmark mounts FUSE filesystems: run it as root');
  if (!fs.existsSync('/dev/fuse')) throw new Error('/dev/fuse is missing');
}

// ---------- tools and builds ----------

function have(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

/** Installs gcc, pkg-config and libfuse3-dev with apt-get when missing. */
export function ensureTools(): void {
  const ok = have('gcc', ['--version']) && fs.existsSync('/usr/include/fuse3/fuse_lowlevel.h') && have('pkg-config', ['--exists', 'fuse3']);
  if (ok) return;
  console.error('installing gcc, pkg-config and libfuse3-dev (apt-get)...');
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', 'gcc', 'pkg-config', 'libfuse3-dev'], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

export function outDir(bench: string): string {
  return path.join(root, 'bench/out', bench);
}

export interface CProgram {
  /** Binary name in bench/out/<bench>/. */
  name: string;
  /** C source file (absolute). */
  src: string;
  fuse?: boolean;
  pthread?: boolean;
}

/** The shared stat client and reference server. */
export const STAT_CLIENT: CProgram = { name: 'stat-client', src: path.join(commonDir, 'stat-client.c'), pthread: true };
export const REF_SERVER: CProgram = { name: 'ref-server', src: path.join(commonDir, 'ref-server.c'), fuse: true };

/** Compiles each program with gcc -O2 -Wall into bench/out/<bench>/; returns name -> binary path. */
export function buildC(bench: string, programs: CProgram[]): Record<string, string> {
  const dir = outDir(bench);
  fs.mkdirSync(dir, { recursive: true });
  let fuseFlags: string[] | null = null;
  const bins: Record<string, string> = {};
  for (const p of programs) {
    const bin = path.join(dir, p.name);
    const extra: string[] = [];
    if (p.fuse) extra.push(...(fuseFlags ??= execFileSync('pkg-config', ['--cflags', '--libs', 'fuse3'], { encoding: 'utf8' }).trim().split(/\s+/)));
    execFileSync('gcc', ['-O2', '-Wall', ...(p.pthread ? ['-pthread'] : []), '-o', bin, p.src, ...extra], { stdio: 'inherit' });
    bins[p.name] = bin;
  }
  return bins;
}

/** Writes the stat client's NAMEFILE: one path relative to the mountpoint a line. */
export function writeNameFile(file: string, names: string[]): void {
  fs.writeFileSync(file, names.map((n) => `${n}\n`).join(''));
}

// ---------- mounts, children, cleanup ----------

export function mountEntry(mnt: string): string | undefined {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[4] === mnt);
}

/** Lazy unmount (`umount -l`) when still mounted. */
export function forceUnmount(mnt: string): void {
  if (mountEntry(mnt) !== undefined) spawnSync('umount', ['-i', '-c', '-l', mnt], { stdio: 'ignore' });
}

const children = new Set<ChildProcess>();
const mounts = new Set<string>();
const tmpDirs = new Set<string>();

/** Registers a child (SIGKILLed on cleanup) and/or a mountpoint (unmounted on cleanup). */
export function track(child: ChildProcess | null, mnt?: string): void {
  if (child) children.add(child);
  if (mnt !== undefined) mounts.add(mnt);
}

export function untrack(child: ChildProcess | null, mnt?: string): void {
  if (child) children.delete(child);
  if (mnt !== undefined) mounts.delete(mnt);
}

/** A temporary directory, deleted on cleanup. */
export function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.add(d);
  return d;
}

/** Kills every tracked child, unmounts every tracked mount, deletes the temporary directories. */
export function cleanupAll(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
  for (const m of mounts) forceUnmount(m);
  mounts.clear();
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
  tmpDirs.clear();
}
process.on('exit', cleanupAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    cleanupAll();
    process.exit(130);
  });
}

/** Runs main; on an error prints it, cleans up and sets exit code 1. */
export function runMain(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    console.error(err);
    cleanupAll();
    process.exitCode = 1;
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves true once the child has exited, false after ms. */
export function exited(c: ChildProcess, ms: number): Promise<boolean> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    c.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** Waits until MNT is mounted and MNT/rel can be stat()ed; fails if the child exits first. */
export async function waitAnswers(mnt: string, rel: string, who: string, child: ChildProcess, timeoutMs = 15_000): Promise<void> {
  for (let i = 0; i < timeoutMs / 50; i++) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${who} exited early (${child.exitCode ?? child.signalCode})`);
    if (mountEntry(mnt) !== undefined) {
      try {
        await fs.promises.stat(path.join(mnt, rel));
        return;
      } catch {
        /* not yet */
      }
    }
    await sleep(50);
  }
  throw new Error(`${who} did not answer at ${mnt} within ${timeoutMs / 1000} s`);
}

/** SIGTERM, then SIGKILL after 5 s; unmounts and untracks. Returns the exit code (null: signal). */
export async function stopServer(child: ChildProcess, mnt: string): Promise<number | null> {
  child.kill('SIGTERM');
  if (!(await exited(child, 5000))) {
    child.kill('SIGKILL');
    await exited(child, 5000);
  }
  forceUnmount(mnt);
  untrack(child, mnt);
  return child.exitCode;
}

// ---------- placement and measuring ----------

/** Where the server and the client threads may run. */
/**
 * Where server and client run: one-cpu = both on CPU 0; split = server on CPU 0, client on CPU 1;
 * unpinned = wherever the scheduler puts them.
 */
export type Placement = 'one-cpu' | 'split' | 'unpinned';
export const PLACEMENTS: Placement[] = ['one-cpu', 'unpinned'];

/**
 * The pid of the process that serves a handlefs mount (the keeper's child; `handlefs mount` itself
 * becomes the keeper), from `handlefs status --json`: what to pin, and whose CPU and memory count.
 */
export function servingPid(mnt: string, env: NodeJS.ProcessEnv): number {
  const out = execFileSync(process.execPath, [path.join(root, 'dist/cli/main.js'), 'status', mnt, '--json'], { env, encoding: 'utf8' });
  const pid = (JSON.parse(out) as { pid?: unknown }).pid;
  if (typeof pid !== 'number') throw new Error(`handlefs status ${mnt}: no serving pid in ${out.slice(0, 200)}`);
  return pid;
}

/** Moves every thread of a server to CPU 0 (one-cpu, split) or back to all CPUs (unpinned). */
export function place(pid: number, placement: Placement): void {
  const cpus = placement === 'unpinned' ? `0-${os.cpus().length - 1}` : '0';
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

/** Runs the stat client (on CPU 0 for one-cpu, CPU 1 for split); stat/s, or the number of names for seconds 0. */
export function measure(client: string, mnt: string, nameFile: string, seconds: number, threads: number, placement: Placement): number {
  const args = [mnt, nameFile, String(seconds), String(threads)];
  const cpu = placement === 'one-cpu' ? '0' : placement === 'split' ? '1' : undefined;
  const out =
    cpu !== undefined
      ? execFileSync('taskset', ['-c', cpu, client, ...args], { encoding: 'utf8' })
      : execFileSync(client, args, { encoding: 'utf8' });
  return Number(out.trim());
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** utime and stime of a process (all threads), in seconds. */
export function cpuTimes(pid: number): { user: number; sys: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]) / CLK_TCK, sys: Number(f[12]) / CLK_TCK };
}

// ---------- figures and report ----------

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** "CPU model, N cores, Linux X, Node Y, libfuse Z" */
export function machine(): string {
  const cpuModel = os.cpus()[0]?.model ?? 'unknown CPU';
  const libfuse = execFileSync('pkg-config', ['--modversion', 'fuse3'], { encoding: 'utf8' }).trim();
  return `${cpuModel}, ${os.cpus().length} cores, Linux ${os.release()}, Node ${process.version}, libfuse ${libfuse}`;
}

export function loadLine(): string {
  const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  return `Load average at the end of the run: ${load} (the machine is shared; other work skews single rounds).`;
}

/** Prints the report; with write, also to bench/out/<bench>/report.md. */
export function writeReport(bench: string, lines: string[], write: boolean): void {
  const report = lines.join('\n') + '\n';
  process.stdout.write(report);
  if (write) {
    fs.mkdirSync(outDir(bench), { recursive: true });
    fs.writeFileSync(path.join(outDir(bench), 'report.md'), report);
  }
}
