/**
 * workloads benchmark: what users do with the mounted tree, side by side with /proc in one run.
 *
 *   node --import tsx bench/workloads/run.ts [--procs 2000,10000] [--rounds R] [--first N] [--old-seconds S] [--write]
 *
 * For each process count: N `sleep` children (bench/tree-stat/procs.c), then per round
 *   - listing: a freshly started service (new state file), `ls -l MNT/pid` once (fresh), twice
 *     more (warm); `ls -l /proc` twice;
 *   - reading: a freshly started service, `cat MNT/pid/*` once (fresh), twice more (warm);
 *     `cat /proc/[0-9]*\/status` twice;
 * then serial first lookups (bench/workloads/lookup.c: fork, stat MNT/pid/<new pid> and
 * /proc/<new pid>, kill) and, at the first count only, stat latency of a long-known handle on a
 * mount with timeouts 0: alone, while another thread creates processes and looks them up, and
 * while it creates the same processes but stats them in /proc only (what the forks alone cost).
 * Also the service's RSS after the listing (every process a handle).
 *
 * Needs root and /dev/fuse; builds dist/ with tsup when dist/cli/main.js is missing and the C
 * helpers into bench/out/workloads/. --write puts the report in bench/out/workloads/report.md.
 * Every child is stopped, every mount removed and the temporary directory deleted in every outcome.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  arg,
  buildC,
  cleanupAll,
  ensureTools,
  exited,
  flag,
  listArg,
  forceUnmount,
  loadLine,
  machine,
  median,
  requireRootAndFuse,
  root,
  runMain,
  servingPid,
  tempDir,
  track,
  untrack,
  waitAnswers,
  writeReport,
} from '../common/harness.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const cliMain = path.join(root, 'dist/cli/main.js');

const COUNTS = listArg('procs', [2000, 10000]);
const ROUNDS = arg('rounds', 3);
const FIRST = arg('first', 300);
const OLD_SECONDS = arg('old-seconds', 3);
const WRITE = flag('write');

function build(): { lookup: string; procs: string } {
  const bins = buildC('workloads', [
    { name: 'lookup', src: path.join(here, 'lookup.c'), pthread: true },
    { name: 'procs', src: path.join(here, '../tree-stat/procs.c') },
  ]);
  if (!fs.existsSync(cliMain)) {
    console.error('dist/cli/main.js missing: building with tsup...');
    execFileSync('npx', ['tsup'], { cwd: root, stdio: 'inherit' });
  }
  return { lookup: bins.lookup!, procs: bins.procs! };
}

// ---------- the handlefs service ----------

interface Service {
  child: ChildProcess;
  mnt: string;
  runtime: string;
}

async function startService(mnt: string, state: string, runtime: string, log: string, probe: string, options: string[] = []): Promise<Service> {
  const fd = fs.openSync(log, 'a');
  const child = spawn(process.execPath, [cliMain, 'mount', mnt, '--state', state, ...options], {
    cwd: root,
    env: { ...process.env, HANDLEFS_RUNTIME_DIR: runtime },
    stdio: ['ignore', fd, fd],
  });
  fs.closeSync(fd);
  track(child, mnt);
  await waitAnswers(mnt, probe, 'handlefs', child, 30_000);
  return { child, mnt, runtime };
}

async function stopService(s: Service): Promise<void> {
  const r = spawnSync(process.execPath, [cliMain, 'umount', s.mnt], { env: { ...process.env, HANDLEFS_RUNTIME_DIR: s.runtime }, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) console.error(`warning: handlefs umount exited ${r.status}: ${r.stderr?.trim()}`);
  if (!(await exited(s.child, 15_000))) {
    console.error('warning: handlefs service did not exit after umount; killing it');
    s.child.kill('SIGKILL');
    await exited(s.child, 5000);
  }
  forceUnmount(s.mnt);
  untrack(s.child, s.mnt);
}

function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

// ---------- measuring ----------

/**
 * Wall time (ms) of a shell command, output discarded. Processes of other users of the machine
 * that exit between the listing and the read are expected ("No such file", "No such process");
 * any other failure is fatal.
 */
function timeSh(cmd: string): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('sh', ['-c', `${cmd} >/dev/null`], { env: { ...process.env, LC_ALL: 'C' }, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const errors = r.stderr.split('\n').filter((l) => l !== '' && !/No such (file or directory|process)/.test(l));
  if (r.status !== 0 && (errors.length > 0 || r.stderr === '')) throw new Error(`${cmd}: exit ${r.status}: ${errors.slice(0, 3).join('; ')}`);
  return ms;
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

interface PerCount {
  n: number;
  lsFresh: number[];
  lsWarm: number[];
  lsProc: number[];
  catFresh: number[];
  catWarm: number[];
  catProc: number[];
  firstHfs: number[];
  firstProc: number[];
  rss: number[];
}

interface Old {
  alone: number[];
  busy: number[];
  created: number;
  /** The same forks, stat'ed in /proc only. */
  forks: number[];
  forked: number;
}

class Procs {
  constructor(readonly child: ChildProcess) {}
  static async start(bin: string, n: number, pidFile: string): Promise<{ procs: Procs; pids: string[] }> {
    const child = spawn(bin, [String(n), pidFile], { stdio: ['pipe', 'pipe', 'inherit'] });
    track(child);
    const line = await new Promise<string>((resolve, reject) => {
      let buf = '';
      const t = setTimeout(() => reject(new Error('procs helper did not start')), 900_000);
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        if (buf.includes('\n')) {
          clearTimeout(t);
          resolve(buf.split('\n')[0]!);
        }
      });
    });
    if (line !== 'ready') throw new Error(`procs helper: ${line}`);
    return { procs: new Procs(child), pids: fs.readFileSync(pidFile, 'utf8').trim().split('\n') };
  }
  async stop(): Promise<void> {
    this.child.stdin!.write('quit\n');
    if (!(await exited(this.child, 30_000))) this.child.kill('SIGKILL');
    untrack(this.child);
  }
}

async function main(): Promise<void> {
  requireRootAndFuse();
  ensureTools();
  const bins = build();
  const t0 = Date.now();
  const base = tempDir('workloads-');
  const mnt = path.join(base, 'm');
  const mnt0 = path.join(base, 'z');
  fs.mkdirSync(mnt);
  fs.mkdirSync(mnt0);
  const runtime = path.join(base, 'run');
  const runtime0 = path.join(base, 'run0');
  fs.mkdirSync(runtime);
  fs.mkdirSync(runtime0);
  const log = path.join(base, 'handlefs.log');
  let stateNo = 0;
  const freshState = () => path.join(base, `state-${stateNo++}.db`);

  const results: PerCount[] = [];
  let old: Old | null = null;
  try {
    for (const n of COUNTS) {
      const { procs, pids } = await Procs.start(bins.procs, n, path.join(base, 'pids'));
      const live = fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x)).length;
      console.error(`${pids.length} sleep children started (${live} processes on the machine)`);
      const r: PerCount = { n: live, lsFresh: [], lsWarm: [], lsProc: [], catFresh: [], catWarm: [], catProc: [], firstHfs: [], firstProc: [], rss: [] };
      const probe = `pid/${pids[0]}`;
      try {
        for (let round = 0; round < ROUNDS; round++) {
          let s = await startService(mnt, freshState(), runtime, log, probe);
          r.lsFresh.push(timeSh(`ls -l ${mnt}/pid`));
          for (let i = 0; i < 2; i++) {
            r.lsProc.push(timeSh('ls -l /proc'));
            r.lsWarm.push(timeSh(`ls -l ${mnt}/pid`));
          }
          r.rss.push(rssMiB(servingPid(s.mnt, { ...process.env, HANDLEFS_RUNTIME_DIR: s.runtime })));
          await stopService(s);
          s = await startService(mnt, freshState(), runtime, log, probe);
          r.catFresh.push(timeSh(`cat ${mnt}/pid/*`));
          for (let i = 0; i < 2; i++) {
            r.catProc.push(timeSh('cat /proc/[0-9]*/status'));
            r.catWarm.push(timeSh(`cat ${mnt}/pid/*`));
          }
          if (round === ROUNDS - 1) {
            const out = execFileSync(bins.lookup, ['first', String(FIRST), mnt], { encoding: 'utf8' });
            for (const line of out.trim().split('\n')) {
              const f = line.split(' ');
              r.firstHfs.push(Number(f[1]));
              r.firstProc.push(Number(f[2]));
            }
          }
          await stopService(s);
          console.error(
            `n=${live} round ${round + 1}: ls fresh ${r.lsFresh.at(-1)!.toFixed(0)} warm ${r.lsWarm.at(-1)!.toFixed(0)} /proc ${r.lsProc.at(-1)!.toFixed(0)} ms; ` +
              `cat fresh ${r.catFresh.at(-1)!.toFixed(0)} warm ${r.catWarm.at(-1)!.toFixed(0)} /proc ${r.catProc.at(-1)!.toFixed(0)} ms`,
          );
        }
        if (old === null) {
          const s0 = await startService(mnt0, freshState(), runtime0, log, probe, ['-o', 'entry_timeout=0,attr_timeout=0']);
          try {
            // 0: alone; 1: another thread forks processes and looks each up in the mount (a new
            // number to commit each time); 2: the same forks, each stat'ed in /proc (no handlefs
            // work): what the forks alone cost the old handle's stats on this machine.
            const sample = (create: 0 | 1 | 2): { lat: number[]; created: number } => {
              const out = execFileSync(bins.lookup, ['old', mnt0, pids[0]!, String(OLD_SECONDS), String(create)], { encoding: 'utf8', maxBuffer: 64 << 20 });
              const lat: number[] = [];
              let created = 0;
              for (const line of out.trim().split('\n')) {
                const f = line.split(' ');
                if (f[0] === 'old') lat.push(Number(f[1]));
                else if (f[0] === 'created') created = Number(f[1]);
              }
              return { lat, created };
            };
            sample(0); // warm-up
            const alone = sample(0);
            const busy = sample(1);
            const forks = sample(2);
            old = { alone: alone.lat, busy: busy.lat, created: busy.created, forks: forks.lat, forked: forks.created };
          } finally {
            await stopService(s0);
          }
        }
      } finally {
        await procs.stop();
      }
      results.push(r);
      report(results, old, t0); // partial figures survive a later failure
    }
  } finally {
    if (fs.existsSync(log)) {
      const warnings = fs.readFileSync(log, 'utf8').split('\n').filter((l) => /"level":(40|50|60)/.test(l));
      if (warnings.length > 0) console.error(`handlefs logged ${warnings.length} warning/error line(s), e.g.:\n${warnings.slice(0, 3).join('\n')}`);
    }
    cleanupAll();
  }
  report(results, old, t0);
}

function report(results: PerCount[], old: Old | null, t0: number): void {
  const elapsed = (Date.now() - t0) / 1000;

  const L: string[] = [];
  L.push('# Workloads benchmark: listing, reading, first lookups (bench/workloads)');
  L.push('');
  L.push(`Machine: ${machine()}. ${ROUNDS} rounds; medians. Run took ${elapsed.toFixed(0)} s. ${loadLine()}`);
  L.push('');
  L.push('| processes | work | handlefs fresh (ms) | handlefs warm (ms) | /proc (ms) | **fresh / /proc** | **warm / /proc** |');
  L.push('| --- | --- | --- | --- | --- | --- | --- |');
  for (const r of results) {
    const row = (work: string, fresh: number[], warm: number[], proc: number[]) => {
      const f = median(fresh);
      const w = median(warm);
      const p = median(proc);
      L.push(`| ${r.n} | ${work} | ${f.toFixed(0)} | ${w.toFixed(0)} | ${p.toFixed(0)} | **${(f / p).toFixed(1)}×** | **${(w / p).toFixed(1)}×** |`);
    };
    row('`ls -l MNT/pid` vs `ls -l /proc`', r.lsFresh, r.lsWarm, r.lsProc);
    row('`cat MNT/pid/*` vs `cat /proc/[0-9]*/status`', r.catFresh, r.catWarm, r.catProc);
  }
  L.push('');
  L.push('| processes | first lookup of a new process (µs) | handlefs p50 / p99 | `stat /proc/PID` p50 / p99 | **p50 ratio** | service RSS after `ls -l` (MiB) |');
  L.push('| --- | --- | --- | --- | --- | --- |');
  for (const r of results) {
    const h50 = pct(r.firstHfs, 50);
    const p50 = pct(r.firstProc, 50);
    L.push(
      `| ${r.n} | ${r.firstHfs.length} serial | ${h50.toFixed(0)} / ${pct(r.firstHfs, 99).toFixed(0)} | ${p50.toFixed(0)} / ${pct(r.firstProc, 99).toFixed(0)} | **${(h50 / p50).toFixed(1)}×** | ${median(r.rss).toFixed(0)} |`,
    );
  }
  if (old !== null) {
    L.push('');
    L.push(`Stat of a long-known handle, timeouts 0 (every stat reaches the service), ${OLD_SECONDS} s each (µs):`);
    L.push('');
    L.push('| while | stats | p50 | p99 | p99.9 |');
    L.push('| --- | --- | --- | --- | --- |');
    L.push(`| alone | ${old.alone.length} | ${pct(old.alone, 50).toFixed(0)} | ${pct(old.alone, 99).toFixed(0)} | ${pct(old.alone, 99.9).toFixed(0)} |`);
    L.push(
      `| another thread creates and looks up processes (${old.created} created) | ${old.busy.length} | ${pct(old.busy, 50).toFixed(0)} | ${pct(old.busy, 99).toFixed(0)} | ${pct(old.busy, 99.9).toFixed(0)} |`,
    );
    L.push(
      `| another thread creates processes and stats them in /proc only (${old.forked} created) | ${old.forks.length} | ${pct(old.forks, 50).toFixed(0)} | ${pct(old.forks, 99).toFixed(0)} | ${pct(old.forks, 99.9).toFixed(0)} |`,
    );
  }
  writeReport('workloads', L, WRITE);
}

runMain(main);
