/**
 * Starting a process at exactly a given pid, for tests of pid reuse. Writing ns_last_pid only
 * makes a pid likely (on a busy host another fork takes it first); clone3's set_tid is exact.
 * The C helper is compiled once per source version into the temp directory (gcc comes with the
 * host packages the tests need).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SOURCE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'at-pid.c');

/** Whether this process may choose pids (root in the initial pid namespace, CAP_CHECKPOINT_RESTORE). */
export const CAN_CHOOSE_PIDS = (() => {
  try {
    fs.accessSync('/proc/sys/kernel/ns_last_pid', fs.constants.W_OK);
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
})();

let built: string | null = null;

function helper(): string {
  if (built) return built;
  const text = fs.readFileSync(SOURCE);
  const hash = crypto.createHash('sha256').update(text).digest('hex').slice(0, 16);
  const bin = path.join(os.tmpdir(), `handlefs-spec-at-pid-${hash}`);
  if (!fs.existsSync(bin)) {
    // Compiled under a private name and renamed: concurrent test workers never run a half-written file.
    const tmp = `${bin}.${process.pid}.tmp`;
    const cc = spawnSync('gcc', ['-O2', '-Wall', '-o', tmp, SOURCE], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`compiling ${SOURCE}: ${cc.error?.message ?? cc.stderr}`);
    fs.renameSync(tmp, bin);
  }
  return (built = bin);
}

export interface AtPid {
  /** The helper: it ends as the command ends, forwards signals to it, and its death kills it. */
  child: ChildProcess;
  /** The command's pid: exactly the one asked for. */
  pid: number;
}

/**
 * Runs `cmd args` as exactly `pid`; resolves once it runs there. Rejects when the pid is taken
 * (by a process that is still alive: a test must let its old holder be reaped first).
 */
export async function startAtPid(pid: number, cmd: string, args: string[]): Promise<AtPid> {
  const child = spawn(helper(), [String(pid), cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const started = await new Promise<boolean>((resolve) => {
    const done = (): void => resolve(false);
    child.once('exit', done);
    const poll = (): void => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      let comm = '';
      let ppid = -1;
      try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        const close = stat.lastIndexOf(')');
        comm = stat.slice(stat.indexOf('(') + 1, close);
        ppid = Number(stat.slice(close + 2).split(' ')[1]);
      } catch {
        /* not yet there */
      }
      if (ppid === child.pid && comm === path.basename(cmd).slice(0, 15)) {
        child.off('exit', done);
        resolve(true);
      } else setTimeout(poll, 2);
    };
    poll();
  });
  if (!started) throw new Error(`could not start ${cmd} at pid ${pid}: ${stderr.trim() || `helper ended with ${child.exitCode ?? child.signalCode}`}`);
  return { child, pid };
}
