/**
 * What the keeper specs share: a sandboxed real mount through the built bin (dist/cli/main.js),
 * its status over the control socket, the serving process's pid across takeovers, and a teardown
 * that removes every mount, bind mount and process in every outcome.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { requestControl } from '../../src/service/control.js';
import type { ServiceStatus } from '../../src/service/status.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'dist/cli/main.js');
export const haveFuse = fs.existsSync('/dev/fuse');
export const isRoot = process.getuid?.() === 0;
export const mountTest = haveFuse && isRoot ? test.serial : test.serial.skip;
if (!haveFuse) console.log('keeper specs: /dev/fuse is absent on this machine; the keeper tests are skipped');
else if (!isRoot) console.log('keeper specs: not root; the keeper tests are skipped');

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Polls `cond` every 20 ms for up to `ms`. */
export async function until(cond: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(20)) if (cond()) return true;
  return cond();
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the bin without blocking the event loop (the keeper may be our child and must be reaped). */
export function run(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export function isMounted(p: string): boolean {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === p);
}

export function childrenOf(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX]/s.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

export async function gone(pid: number, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (alive(pid) && Date.now() < deadline) await sleep(10);
  return !alive(pid);
}

export interface Sandbox {
  dir: string;
  mnt: string;
  state: string;
  env: NodeJS.ProcessEnv;
  /** Processes to kill at the end (keepers we started, targets). */
  pids: number[];
  /** Files bind-mounted over, unmounted at the end. */
  binds: string[];
}

export function sandbox(t: ExecutionContext): Sandbox {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'handlefs-keeper-'));
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  const sb: Sandbox = { dir, mnt, state: path.join(dir, 'state.db'), env: { HANDLEFS_RUNTIME_DIR: path.join(dir, 'run') }, pids: [], binds: [] };
  t.teardown(async () => {
    // A failure on a CI machine is read from its output only: show the service's own log.
    if (!t.passed) {
      const runDir = sb.env['HANDLEFS_RUNTIME_DIR']!;
      for (const f of fs.existsSync(runDir) ? fs.readdirSync(runDir).filter((n) => n.endsWith('.log')) : []) {
        const lines = fs.readFileSync(path.join(runDir, f), 'utf8').trimEnd().split('\n');
        console.error(`--- ${t.title}: last ${Math.min(80, lines.length)} lines of the service log ${f}\n${lines.slice(-80).join('\n')}\n---`);
      }
    }
    for (const b of sb.binds) if (isMounted(b)) spawnSync('umount', ['-l', b]);
    for (const pid of sb.pids) {
      for (const c of childrenOf(pid)) if (alive(c)) process.kill(c, 'SIGKILL');
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    if (isMounted(mnt)) spawnSync('umount', ['-l', mnt]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return sb;
}

/** The service's status over its control socket (what `handlefs status --json` prints), in-process: fast. */
export async function status(sb: Sandbox): Promise<ServiceStatus | undefined> {
  process.env.HANDLEFS_RUNTIME_DIR = sb.env.HANDLEFS_RUNTIME_DIR;
  return requestControl<ServiceStatus>(sb.mnt, { op: 'status' }, 2000).catch(() => undefined);
}

/** `handlefs mount --daemon`; returns the keeper's status once the mount serves. */
export async function mountDaemon(t: ExecutionContext, sb: Sandbox, env: NodeJS.ProcessEnv = {}): Promise<ServiceStatus> {
  const r = await run(['mount', sb.mnt, '--state', sb.state, '--daemon'], { ...sb.env, ...env });
  t.is(r.code, 0, r.stderr);
  const s = await status(sb);
  if (s === undefined) return t.fail('no status after mount') as never;
  sb.pids.push(s.keeperPid!);
  return s;
}

/** The serving process's pid, from the keeper's children and the status. */
export async function waitNewServer(sb: Sandbox, old: number, ms = 15_000): Promise<ServiceStatus | undefined> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const s = await status(sb);
    if (s !== undefined && s.pid !== old) return s;
    await sleep(20);
  }
  return undefined;
}

/** A process to hold a pid: sleeps until killed. */
export function target(sb: Sandbox): ChildProcess {
  const c = spawn('sleep', ['600'], { stdio: 'ignore' });
  sb.pids.push(c.pid!);
  return c;
}

/** The keeper's open descriptors that name namespace `type:[inum]`. */
export function keeperCopies(keeperPid: number, type: string, inum: number): number {
  let n = 0;
  for (const fd of fs.readdirSync(`/proc/${keeperPid}/fd`)) {
    try {
      if (fs.readlinkSync(`/proc/${keeperPid}/fd/${fd}`) === `${type}:[${inum}]`) n++;
    } catch {
      /* closed meanwhile */
    }
  }
  return n;
}
