/**
 * fuse-stat benchmark: uncached stat() throughput of the TypeScript FuseSession vs a libfuse3
 * low-level C server (ref_ll.c) serving the same tree (root -> pid/ -> N files) with entry and
 * attribute timeouts 0, measured by the same pthread C client, alternating, several rounds.
 *
 *   node --import tsx bench/fuse-stat/run.ts [--files N] [--seconds S] [--rounds R] [--write]
 *
 * Needs root and /dev/fuse. Installs gcc + libfuse3-dev with apt-get when missing. Builds into
 * bench/out/fuse-stat/. --write puts the report in bench/out/fuse-stat/report.md, for docs/benchmarks.md. Every server is
 * stopped and every mount removed in every outcome (including Ctrl-C).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const outDir = path.join(root, 'bench/out/fuse-stat');

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const FILES = arg('files', 1000);
const SECONDS = arg('seconds', 2);
const ROUNDS = arg('rounds', 5);
const THREADS = [1, 2];
const WRITE = process.argv.includes('--write');

function have(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

function ensureTools(): void {
  const ok = have('gcc', ['--version']) && fs.existsSync('/usr/include/fuse3/fuse_lowlevel.h') && have('pkg-config', ['--exists', 'fuse3']);
  if (ok) return;
  console.error('installing gcc, pkg-config and libfuse3-dev (apt-get)...');
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', 'gcc', 'pkg-config', 'libfuse3-dev'], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

function build(): { refLl: string; client: string } {
  fs.mkdirSync(outDir, { recursive: true });
  const refLl = path.join(outDir, 'ref_ll');
  const client = path.join(outDir, 'client');
  const fuseFlags = execFileSync('pkg-config', ['--cflags', '--libs', 'fuse3'], { encoding: 'utf8' }).trim().split(/\s+/);
  execFileSync('gcc', ['-O2', '-Wall', '-o', refLl, path.join(here, 'ref_ll.c'), ...fuseFlags], { stdio: 'inherit' });
  execFileSync('gcc', ['-O2', '-Wall', '-pthread', '-o', client, path.join(here, 'client.c')], { stdio: 'inherit' });
  return { refLl, client };
}

function mounted(mnt: string): boolean {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === mnt);
}

function forceUnmount(mnt: string): void {
  if (mounted(mnt)) spawnSync('umount', ['-i', '-c', '-l', mnt], { stdio: 'ignore' });
}

interface Running {
  child: ChildProcess;
  mnt: string;
}

const running = new Set<Running>();

function cleanupAll(): void {
  for (const r of running) {
    r.child.kill('SIGKILL');
    forceUnmount(r.mnt);
  }
  running.clear();
}
process.on('exit', cleanupAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    cleanupAll();
    process.exit(130);
  });
}

type Kind = 'ts' | 'c' | 'c-epoll';
const KINDS: Kind[] = ['ts', 'c', 'c-epoll'];
const LABEL: Record<Kind, string> = { ts: 'TypeScript', c: 'libfuse C', 'c-epoll': 'libfuse C (epoll loop)' };

async function start(kind: Kind, bin: string, mnt: string): Promise<Running> {
  const child =
    kind === 'ts'
      ? spawn(process.execPath, ['--import', 'tsx', path.join(here, 'ts-server.ts'), mnt, String(FILES)], {
          cwd: root,
          stdio: ['ignore', 'pipe', 'inherit'],
        })
      : spawn(bin, [mnt, String(FILES), ...(kind === 'c-epoll' ? ['epoll'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  const r: Running = { child, mnt };
  running.add(r);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} server did not become ready`)), 30_000);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${kind} server exited early (${code})`));
    });
  });
  // Wait until the tree answers.
  for (let i = 0; i < 100; i++) {
    try {
      await fs.promises.stat(path.join(mnt, 'pid', 'f0'));
      return r;
    } catch {
      await new Promise((res) => setTimeout(res, 50));
    }
  }
  throw new Error(`${kind} server mounted but does not answer`);
}

async function stop(r: Running): Promise<void> {
  const exited = new Promise<number | null>((resolve) => {
    if (r.child.exitCode !== null) resolve(r.child.exitCode);
    else r.child.once('exit', (code) => resolve(code));
  });
  r.child.kill('SIGTERM');
  const code = await Promise.race([exited, new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 5000))]);
  if (code === 'timeout') {
    r.child.kill('SIGKILL');
    await exited;
  }
  forceUnmount(r.mnt);
  running.delete(r);
  if (code !== 0) console.error(`warning: server exited with ${String(code)}`);
}

/** Where the server and the client threads may run. */
type Placement = 'unpinned' | 'one-cpu';
const PLACEMENTS: Placement[] = ['one-cpu', 'unpinned'];

function measure(client: string, mnt: string, seconds: number, threads: number, placement: Placement): number {
  const args = [mnt, String(FILES), String(seconds), String(threads)];
  const out =
    placement === 'one-cpu'
      ? execFileSync('taskset', ['-c', '0', client, ...args], { encoding: 'utf8' })
      : execFileSync(client, args, { encoding: 'utf8' });
  return Number(out.trim());
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** utime + stime of a process (all threads), in seconds, split. */
function cpuTimes(pid: number): { user: number; sys: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]) / CLK_TCK, sys: Number(f[12]) / CLK_TCK };
}

/** Moves every thread of the server to CPU 0 (one-cpu) or back to all CPUs (unpinned). */
function place(pid: number, placement: Placement): void {
  const cpus = placement === 'one-cpu' ? '0' : `0-${os.cpus().length - 1}`;
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark mounts FUSE filesystems: run it as root');
  if (!fs.existsSync('/dev/fuse')) throw new Error('/dev/fuse is missing');
  ensureTools();
  const { refLl, client } = build();
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'fuse-stat-'));
  // results[placement][kind][threads] = stat/s per round
  const results = Object.fromEntries(
    PLACEMENTS.map((p) => [p, Object.fromEntries(KINDS.map((k) => [k, {} as Record<number, number[]>]))]),
  ) as Record<Placement, Record<Kind, Record<number, number[]>>>;
  const cpu = Object.fromEntries(KINDS.map((k) => [k, {} as { user?: number[]; sys?: number[] }])) as Record<
    Kind,
    { user?: number[]; sys?: number[] }
  >;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate the order so no server always runs first (or last).
      const order = KINDS.map((_, i) => KINDS[(i + round) % KINDS.length]!);
      for (const kind of order) {
        const r = await start(kind, refLl, mnt);
        try {
          measure(client, mnt, 1, 1, 'unpinned'); // warm-up (JIT, caches)
          for (const placement of PLACEMENTS) {
            place(r.child.pid!, placement);
            for (const t of THREADS) {
              const before = cpuTimes(r.child.pid!);
              const v = measure(client, mnt, SECONDS, t, placement);
              const after = cpuTimes(r.child.pid!);
              (results[placement][kind][t] ??= []).push(v);
              if (placement === 'one-cpu' && t === 1) {
                // 3 requests per stat (LOOKUP pid, LOOKUP fI, GETATTR).
                const reqs = v * SECONDS * 3;
                (cpu[kind].user ??= []).push(((after.user - before.user) * 1e6) / reqs);
                (cpu[kind].sys ??= []).push(((after.sys - before.sys) * 1e6) / reqs);
              }
              console.error(`round ${round + 1} ${LABEL[kind]} ${placement} threads=${t}: ${v} stat/s`);
            }
          }
        } finally {
          await stop(r);
        }
      }
    }
  } finally {
    cleanupAll();
    forceUnmount(mnt);
    fs.rmSync(mnt, { recursive: true, force: true });
  }

  const cpuModel = os.cpus()[0]?.model ?? 'unknown CPU';
  const libfuse = execFileSync('pkg-config', ['--modversion', 'fuse3'], { encoding: 'utf8' }).trim();
  const lines: string[] = [];
  lines.push('# FUSE stat benchmark (bench/fuse-stat)');
  lines.push('');
  lines.push(
    `Uncached \`stat()\` of \`MNT/pid/fI\` (root → pid/ → ${FILES} files; entry_timeout=0, attr_timeout=0, so every stat ` +
      'costs LOOKUP pid + LOOKUP fI + GETATTR round trips) by the pthread C client `client.c`, against the TypeScript ' +
      '`FuseSession` (`ts-server.ts`) and a libfuse3 low-level C server (`ref_ll.c`, single-threaded `fuse_session_loop`); ' +
      'also `ref_ll.c` with an epoll loop (epoll_wait + non-blocking read, the TypeScript session\'s read mechanism) to ' +
      `separate the cost of the mechanism from the cost of JavaScript. ${ROUNDS} rounds × ${SECONDS} s per figure, server order ` +
      'rotating each round, each server measured pinned to one CPU and unpinned; medians.',
  );
  lines.push('');
  lines.push(`Machine: ${cpuModel}, ${os.cpus().length} cores, Linux ${os.release()}, Node ${process.version}, libfuse ${libfuse}.`);
  lines.push('');
  const PLACEMENT_TEXT: Record<Placement, string> = {
    'one-cpu': 'server and client pinned to CPU 0 (taskset): throughput = 1 / (CPU time per stat); reproducible',
    unpinned: 'no pinning: the scheduler decides; on this VM a cross-CPU wake-up costs tens of µs, so rounds are bimodal',
  };
  for (const placement of PLACEMENTS) {
    const r = results[placement];
    lines.push(`### ${placement}: ${PLACEMENT_TEXT[placement]}`);
    lines.push('');
    lines.push('| client threads | TypeScript (stat/s) | libfuse C (stat/s) | **TS / C** | C, epoll loop (stat/s) | TS / C-epoll |');
    lines.push('| --- | --- | --- | --- | --- | --- |');
    for (const t of THREADS) {
      const ts = median(r.ts[t] ?? []);
      const c = median(r.c[t] ?? []);
      const ce = median(r['c-epoll'][t] ?? []);
      lines.push(`| ${t} | ${ts.toFixed(0)} | ${c.toFixed(0)} | **${(ts / c).toFixed(2)}** | ${ce.toFixed(0)} | ${(ts / ce).toFixed(2)} |`);
    }
    lines.push('');
    lines.push('Every round (stat/s):');
    lines.push('');
    for (const k of KINDS) {
      for (const t of THREADS) lines.push(`- ${LABEL[k]}, ${t} client thread(s): ${(r[k][t] ?? []).join(', ')}`);
    }
    lines.push('');
  }
  lines.push('### Server CPU time per request (one-cpu, 1 client thread; from /proc/PID/stat; medians)');
  lines.push('');
  lines.push('| server | user µs/request | kernel µs/request | total µs/request |');
  lines.push('| --- | --- | --- | --- |');
  for (const k of KINDS) {
    const u = median(cpu[k].user ?? []);
    const sy = median(cpu[k].sys ?? []);
    lines.push(`| ${LABEL[k]} | ${u.toFixed(2)} | ${sy.toFixed(2)} | ${(u + sy).toFixed(2)} |`);
  }
  lines.push('');
  const cu = (k: Kind, f: 'user' | 'sys'): number => median(cpu[k][f] ?? []);
  lines.push('What the CPU figures say: per request the TypeScript server spends ' +
    `${(cu('ts', 'user') - cu('c', 'user')).toFixed(2)} µs more user time and ${(cu('ts', 'sys') - cu('c', 'sys')).toFixed(2)} µs more kernel time ` +
    `than libfuse's blocking loop. The C epoll loop spends ${(cu('c-epoll', 'sys') - cu('c', 'sys')).toFixed(2)} µs more kernel time than the blocking loop: ` +
    'that part is the read mechanism (epoll_wait + a non-blocking read instead of one blocking read), which the session uses so the ' +
    'event loop stays free for asynchronous handlers, timers, notifications and signals. The user-time difference is Node: the libuv ' +
    'loop turn, the C++→JS callback and fs.writeSync; the session\'s own JavaScript (decode, dispatch, encode) measures about ' +
    '0.3 µs per request in isolation (bench/fuse-stat/micro.ts).');
  lines.push('');
  const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  lines.push('');
  lines.push(`Load average at the end of the run: ${load} (the machine is shared; other work skews single rounds).`);
  lines.push('');
  lines.push('Run: `node --import tsx bench/fuse-stat/run.ts [--files N] [--seconds S] [--rounds R] [--write]` (root).');
  const report = lines.join('\n') + '\n';
  process.stdout.write(report);
  if (WRITE) fs.writeFileSync(path.join(root, 'bench/out/fuse-stat/report.md'), report);
}

main().catch((err: unknown) => {
  console.error(err);
  cleanupAll();
  process.exitCode = 1;
});
