/**
 * poll-exit benchmark: how long after kill(2) an epoll waiter on an open `pid/<pid>` handle of the
 * real handlefs service wakes (FUSE_POLL + FUSE_NOTIFY_POLL), next to the same wait on a pidfd (the
 * kernel's own floor). Processes are killed one at a time, alternating which waiter is armed
 * first, with a gap between kills.
 *
 *   node --import tsx bench/poll-exit/run.ts [--kills K] [--gap-ms G] [--write]
 *
 * Needs root, /dev/fuse and the native helper (npm run build:native); builds dist/ with tsup when
 * dist/cli/main.js is missing. --write puts the report in bench/out/poll-exit/report.md, for
 * docs/benchmarks.md. Every child is stopped, the mount removed and the temporary directory
 * deleted in every outcome (including Ctrl-C).
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadNative } from '../../src/sources/native.js';
import { arg, flag, requireRootAndFuse, root, runMain, sleep, stopServer, tempDir, track, waitAnswers, writeReport } from '../common/harness.js';

const KILLS = arg('kills', 200);
const GAP_MS = arg('gap-ms', 20);
const WRITE = flag('write');
const cliMain = path.join(root, 'dist/cli/main.js');

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

const fmt = (ms: number) => ms.toFixed(2);

async function main(): Promise<void> {
  requireRootAndFuse();
  const native = loadNative();
  if (!fs.existsSync(cliMain)) execFileSync('npx', ['tsup'], { cwd: root, stdio: 'inherit' });
  const dir = tempDir('handlefs-poll-');
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  const log = fs.openSync(path.join(dir, 'service.log'), 'a');
  const service = spawn(process.execPath, [cliMain, 'mount', mnt, '--state', path.join(dir, 'state.db')], {
    env: { ...process.env, HANDLEFS_RUNTIME_DIR: path.join(dir, 'run') },
    stdio: ['ignore', log, log],
  });
  fs.closeSync(log);
  track(service, mnt);
  await waitAnswers(mnt, 'pid/1', 'handlefs', service);

  const handle: number[] = [];
  const pidfd: number[] = [];
  for (let i = 0; i < KILLS; i++) {
    const p = spawn('sleep', ['600'], { stdio: 'ignore' });
    track(p);
    const pid = p.pid!;
    const hfd = fs.openSync(path.join(mnt, 'pid', String(pid)), 'r');
    const pfd = native.pidfdOpen(pid);
    const woke: Record<'h' | 'p', number> = { h: 0, p: 0 };
    const done = new Promise<void>((resolve) => {
      const check = () => woke.h > 0 && woke.p > 0 && resolve();
      const arm = [() => native.watchFd(hfd, () => ((woke.h = performance.now()), check())), () => native.watchFd(pfd, () => ((woke.p = performance.now()), check()))];
      if (i % 2 === 1) arm.reverse();
      for (const a of arm) a();
    });
    await sleep(GAP_MS); // the handle's POLL has registered its waiter
    const t0 = performance.now();
    process.kill(pid, 'SIGKILL');
    await done;
    handle.push(woke.h - t0);
    pidfd.push(woke.p - t0);
    fs.closeSync(hfd);
    fs.closeSync(pfd);
    await new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once('exit', r)));
  }
  await stopServer(service, mnt);

  const row = (name: string, xs: number[]) => `| ${name} | ${fmt(percentile(xs, 50))} | ${fmt(percentile(xs, 95))} | ${fmt(percentile(xs, 99))} | ${fmt(Math.max(...xs))} |`;
  writeReport(
    'poll-exit',
    [
      `poll-exit: ${KILLS} processes killed one at a time (gap ${GAP_MS} ms); time from kill(2) to the epoll wake-up, ms`,
      `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, Linux ${os.release()}, Node ${process.version}`,
      '',
      '| waiter | median | p95 | p99 | max |',
      '| --- | --- | --- | --- | --- |',
      row('open handle `pid/<pid>` (FUSE_POLL + FUSE_NOTIFY_POLL)', handle),
      row('pidfd (the kernel alone)', pidfd),
      '',
      `Within 100 ms: ${handle.filter((x) => x <= 100).length}/${KILLS} handle waiters.`,
      `Load average at the end of the run: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} (the machine is shared).`,
    ],
    WRITE,
  );
}

runMain(main);
