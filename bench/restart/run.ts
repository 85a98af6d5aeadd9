/**
 * How long clients wait when the serving process dies or is replaced (issue 12).
 *
 *   npm run bench:restart [-- --kills 50 --restarts 10]     (root, /dev/fuse; uses dist/: npx tsup first)
 *
 * - kill → first answer: a daemon mount (`handlefs mount --daemon`); each round a client stats a
 *   name no cache can answer (a negative lookup goes to the server) right after `kill -9` of the
 *   serving process; the time until that stat returns is what a client waits. Rounds start once
 *   the keeper's standby has loaded, as in steady state.
 * - restart → serving: `kill -HUP` of the keeper (what `handlefs restart` sends) until a stat
 *   issued at the same moment is answered by the new process, and until the control socket
 *   answers with the new pid.
 * Prints p50/p90/max and a markdown table for docs/benchmarks.md.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { arg, requireRootAndFuse, root } from '../common/harness.js';
import { requestControl } from '../../src/service/control.js';
import type { ServiceStatus } from '../../src/service/status.js';

const BIN = path.join(root, 'dist/cli/main.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function children(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

const ms = (x: number) => `${x.toFixed(1)} ms`;

/** A stat the kernel cannot answer from its caches: resolves when some server answered it. */
async function answered(mnt: string): Promise<void> {
  await fs.promises.stat(path.join(mnt, 'pid', '4194303')).catch(() => undefined);
}

async function main(): Promise<void> {
  requireRootAndFuse();
  if (!fs.existsSync(BIN)) throw new Error(`${BIN} is missing: run npx tsup first`);
  const kills = arg('kills', 50);
  const restarts = arg('restarts', 10);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'handlefs-bench-restart-'));
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  const env = { ...process.env, HANDLEFS_RUNTIME_DIR: path.join(dir, 'run'), HANDLEFS_CRASH_LIMIT: '100000/1' };
  process.env.HANDLEFS_RUNTIME_DIR = env.HANDLEFS_RUNTIME_DIR;
  let keeper = 0;
  const cleanup = () => {
    if (keeper) for (const p of [keeper, ...children(keeper)]) spawnSync('kill', ['-9', String(p)]);
    spawnSync('umount', ['-l', mnt]);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    const m = spawnSync(process.execPath, [BIN, 'mount', mnt, '--state', path.join(dir, 'state.db'), '--daemon'], { env, encoding: 'utf8' });
    if (m.status !== 0) throw new Error(`mount failed: ${m.stderr}`);
    const status = () => requestControl<ServiceStatus>(mnt, { op: 'status' }, 2000);
    let s = await status();
    keeper = s.keeperPid!;
    /** Waits for a serving process other than `old` and for the keeper's standby to have loaded. */
    const settle = async (old: number): Promise<ServiceStatus> => {
      for (;;) {
        const now = await status().catch(() => undefined);
        if (now !== undefined && now.pid !== old && children(keeper).length >= 2) break;
        await sleep(20);
      }
      await sleep(1500); // the standby loads its code (about a second on a busy machine)
      return status();
    };
    s = await settle(0);

    const gaps: number[] = [];
    for (let i = 0; i < kills; i++) {
      const t0 = performance.now();
      process.kill(s.pid, 'SIGKILL');
      await answered(mnt);
      gaps.push(performance.now() - t0);
      s = await settle(s.pid);
    }

    const firstAnswer: number[] = [];
    const serving: number[] = [];
    for (let i = 0; i < restarts; i++) {
      const old = s.pid;
      const t0 = performance.now();
      process.kill(keeper, 'SIGHUP');
      // Clients keep asking during the hand-over; the slowest one is the gap a client can see.
      let worst = 0;
      let done = false;
      const probe = (async () => {
        while (!done) {
          const a = performance.now();
          await answered(mnt);
          worst = Math.max(worst, performance.now() - a);
        }
      })();
      for (;;) {
        const now = await status().catch(() => undefined);
        if (now !== undefined && now.pid !== old) break;
        await sleep(5);
      }
      serving.push(performance.now() - t0);
      done = true;
      await probe;
      firstAnswer.push(worst);
      s = await settle(old);
    }

    const row = (name: string, xs: number[]) => `| ${name} | ${xs.length} | ${ms(quantile(xs, 0.5))} | ${ms(quantile(xs, 0.9))} | ${ms(Math.max(...xs))} |`;
    console.log(`\nhandlefs restart benchmark: ${os.cpus().length} CPUs, Node ${process.version}, ${new Date().toISOString()}\n`);
    console.log('| measure | n | p50 | p90 | max |');
    console.log('| --- | --- | --- | --- | --- |');
    console.log(row('kill -9 → first answered request', gaps));
    console.log(row('restart: longest wait of a client during the hand-over', firstAnswer));
    console.log(row('restart: SIGHUP → new process answers status', serving));
  } finally {
    cleanup();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
