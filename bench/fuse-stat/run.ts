/**
 * fuse-stat benchmark: uncached stat() throughput of the TypeScript FuseSession vs a libfuse3
 * low-level C server (bench/common/ref-server.c) serving the same tree (root -> pid/ -> N files) with entry and
 * attribute timeouts 0, measured by the same pthread C client (bench/common/stat-client.c), alternating, several rounds.
 *
 *   node --import tsx bench/fuse-stat/run.ts [--files N] [--seconds S] [--rounds R] [--write]
 *
 * Needs root and /dev/fuse. Installs gcc + libfuse3-dev with apt-get when missing. Builds into
 * bench/out/fuse-stat/. --write puts the report in bench/out/fuse-stat/report.md, for docs/benchmarks.md. Every server is
 * stopped and every mount removed in every outcome (including Ctrl-C).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  REF_SERVER,
  STAT_CLIENT,
  arg,
  buildC,
  cleanupAll,
  cpuTimes,
  ensureTools,
  flag,
  loadLine,
  machine,
  measure,
  median,
  place,
  requireRootAndFuse,
  root,
  runMain,
  stopServer,
  tempDir,
  track,
  waitAnswers,
  writeNameFile,
  writeReport,
  type Placement,
} from '../common/harness.js';

const here = path.dirname(fileURLToPath(import.meta.url));

const FILES = arg('files', 1000);
const SECONDS = arg('seconds', 2);
const ROUNDS = arg('rounds', 5);
const THREADS = [1, 2];
const PLACEMENTS: Placement[] = ['one-cpu', 'split', 'unpinned'];
const WRITE = flag('write');

type Kind = 'ts' | 'ts-pipe' | 'c' | 'c-epoll';
const KINDS: Kind[] = ['ts', 'ts-pipe', 'c', 'c-epoll'];
const LABEL: Record<Kind, string> = {
  ts: 'TypeScript',
  'ts-pipe': 'TypeScript (uv-pipe fallback)',
  c: 'libfuse C',
  'c-epoll': 'libfuse C (epoll loop)',
};

interface Running {
  child: ChildProcess;
  mnt: string;
}

async function start(kind: Kind, refServer: string, mnt: string): Promise<Running> {
  const child =
    kind === 'ts' || kind === 'ts-pipe'
      ? spawn(process.execPath, ['--import', 'tsx', path.join(here, 'ts-server.ts'), mnt, String(FILES)], {
          cwd: root,
          stdio: ['ignore', 'ignore', 'inherit'],
          env: { ...process.env, FUSE_BENCH_READER: kind === 'ts' ? 'native' : 'uv-pipe' },
        })
      : spawn(refServer, [mnt, '-n', String(FILES), '-t', '0', '-s', '64', '-F', 'ref_ll', '-l', kind === 'c-epoll' ? 'epoll' : 'loop'], {
          stdio: ['ignore', 'ignore', 'inherit'],
        });
  track(child, mnt);
  await waitAnswers(mnt, 'pid/f0', `${kind} server`, child, 30_000);
  return { child, mnt };
}

async function stop(r: Running): Promise<void> {
  const code = await stopServer(r.child, r.mnt);
  if (code !== 0) console.error(`warning: server exited with ${String(code ?? r.child.signalCode)}`);
}

async function main(): Promise<void> {
  requireRootAndFuse();
  ensureTools();
  const bins = buildC('fuse-stat', [REF_SERVER, STAT_CLIENT]);
  const refServer = bins[REF_SERVER.name]!;
  const client = bins[STAT_CLIENT.name]!;
  const mnt = tempDir('fuse-stat-');
  const names = path.join(tempDir('fuse-stat-names-'), 'names');
  writeNameFile(names, Array.from({ length: FILES }, (_, i) => `pid/f${i}`));
  // results[placement][kind][threads] = stat/s per round
  const results = Object.fromEntries(
    PLACEMENTS.map((p) => [p, Object.fromEntries(KINDS.map((k) => [k, {} as Record<number, number[]>]))]),
  ) as Record<Placement, Record<Kind, Record<number, number[]>>>;
  // cpu[kind][threads] = server CPU µs per request, per round (one-cpu placement)
  type Cpu = { user: number[]; sys: number[] };
  const cpu = Object.fromEntries(KINDS.map((k) => [k, {} as Record<number, Cpu>])) as Record<Kind, Record<number, Cpu>>;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate the order so no server always runs first (or last).
      const order = KINDS.map((_, i) => KINDS[(i + round) % KINDS.length]!);
      for (const kind of order) {
        const r = await start(kind, refServer, mnt);
        try {
          measure(client, mnt, names, 1, 1, 'unpinned'); // warm-up (JIT, caches)
          for (const placement of PLACEMENTS) {
            place(r.child.pid!, placement);
            for (const t of THREADS) {
              const before = cpuTimes(r.child.pid!);
              const v = measure(client, mnt, names, SECONDS, t, placement);
              const after = cpuTimes(r.child.pid!);
              (results[placement][kind][t] ??= []).push(v);
              if (placement === 'one-cpu') {
                // 3 requests per stat (LOOKUP pid, LOOKUP fI, GETATTR).
                const reqs = v * SECONDS * 3;
                const c = (cpu[kind][t] ??= { user: [], sys: [] });
                c.user.push(((after.user - before.user) * 1e6) / reqs);
                c.sys.push(((after.sys - before.sys) * 1e6) / reqs);
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
  }

  const lines: string[] = [];
  lines.push('# FUSE stat benchmark (bench/fuse-stat)');
  lines.push('');
  lines.push(
    `Uncached \`stat()\` of \`MNT/pid/fI\` (root → pid/ → ${FILES} files; entry_timeout=0, attr_timeout=0, so every stat ` +
      'costs LOOKUP pid + LOOKUP fI + GETATTR round trips) by the pthread C client `bench/common/stat-client.c`, against the TypeScript ' +
      '`FuseSession` (`ts-server.ts`, reading through the FUSE device helper, `native/fuse_device.c`) and a libfuse3 low-level C server ' +
      '(`bench/common/ref-server.c`, single-threaded `fuse_session_loop`); also the session with its fallback reader (a libuv pipe ' +
      'handle, used when the helper is not built), and `ref-server.c` with an epoll loop (epoll_wait, then non-blocking reads ' +
      'until EAGAIN: the native reader\'s mechanism) to ' +
      `separate the cost of the mechanism from the cost of JavaScript. ${ROUNDS} rounds × ${SECONDS} s per figure, server order ` +
      'rotating each round, each server measured in three placements; medians.',
  );
  lines.push('');
  lines.push(`Machine: ${machine()}.`);
  lines.push('');
  const PLACEMENT_TEXT: Record<Placement, string> = {
    'one-cpu': 'server and client pinned to CPU 0 (taskset): throughput = 1 / (CPU time per stat); reproducible',
    split: 'server on CPU 0, client on CPU 1: every request and reply is a cross-CPU wake-up; throughput = 1 / round-trip latency',
    unpinned: 'no pinning: the scheduler decides; on this VM a cross-CPU wake-up costs tens of µs, so rounds are bimodal',
  };
  for (const placement of PLACEMENTS) {
    const r = results[placement];
    lines.push(`### ${placement}: ${PLACEMENT_TEXT[placement]}`);
    lines.push('');
    lines.push(
      '| client threads | TypeScript (stat/s) | libfuse C (stat/s) | **TS / C** | TS, uv-pipe fallback (stat/s) | fallback / C | C, epoll loop (stat/s) | TS / C-epoll |',
    );
    lines.push('| --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const t of THREADS) {
      const ts = median(r.ts[t] ?? []);
      const tp = median(r['ts-pipe'][t] ?? []);
      const c = median(r.c[t] ?? []);
      const ce = median(r['c-epoll'][t] ?? []);
      lines.push(
        `| ${t} | ${ts.toFixed(0)} | ${c.toFixed(0)} | **${(ts / c).toFixed(2)}** | ${tp.toFixed(0)} | ${(tp / c).toFixed(2)} | ${ce.toFixed(0)} | ${(ts / ce).toFixed(2)} |`,
      );
    }
    lines.push('');
    lines.push('Every round (stat/s):');
    lines.push('');
    for (const k of KINDS) {
      for (const t of THREADS) lines.push(`- ${LABEL[k]}, ${t} client thread(s): ${(r[k][t] ?? []).join(', ')}`);
    }
    lines.push('');
  }
  lines.push('### Server CPU time per request (one-cpu; from /proc/PID/stat, 10 ms ticks; medians)');
  lines.push('');
  lines.push('| server | client threads | user µs/request | kernel µs/request | total µs/request |');
  lines.push('| --- | --- | --- | --- | --- |');
  const cu = (k: Kind, t: number, f: keyof Cpu): number => median(cpu[k][t]?.[f] ?? []);
  for (const k of KINDS) {
    for (const t of THREADS) {
      const u = cu(k, t, 'user');
      const sy = cu(k, t, 'sys');
      lines.push(`| ${LABEL[k]} | ${t} | ${u.toFixed(2)} | ${sy.toFixed(2)} | ${(u + sy).toFixed(2)} |`);
    }
  }
  lines.push('');
  const more = (k: Kind, than: Kind, t: number): string =>
    `${(cu(k, t, 'user') - cu(than, t, 'user')).toFixed(2)} µs user and ${(cu(k, t, 'sys') - cu(than, t, 'sys')).toFixed(2)} µs kernel`;
  lines.push(
    'What the CPU figures say (positive = more than the second server): with 2 client threads the TypeScript server spends ' +
      `${more('ts', 'c', 2)} per request more than libfuse's blocking loop, and ${more('ts', 'c-epoll', 2)} more than the C epoll ` +
      `loop that reads the same way; the C epoll loop itself spends ${more('c-epoll', 'c', 2)} more than the blocking loop, the ` +
      'price of a read that never blocks the thread (the session needs its event loop free for asynchronous handlers, timers, ' +
      `notifications and signals). The uv-pipe fallback spends ${more('ts-pipe', 'ts', 2)} more than the native reader: a loop ` +
      'turn and a C++→JS callback per wake-up, and a thrown Error for each read that finds the queue empty. The session\'s own ' +
      'JavaScript (decode, dispatch, encode) measures about 0.3 µs per request in isolation (bench/fuse-stat/micro.ts).',
  );
  lines.push('');
  lines.push(loadLine());
  lines.push('');
  lines.push('Run: `node --import tsx bench/fuse-stat/run.ts [--files N] [--seconds S] [--rounds R] [--write]` (root).');
  writeReport('fuse-stat', lines, WRITE);
}

runMain(main);
