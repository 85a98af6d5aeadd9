/**
 * tree-stat benchmark: stat() throughput on live `pid/<pid>` handles of the real handlefs service
 * (default options: entry_timeout = attr_timeout = 3600 s, exits invalidated explicitly) vs a
 * libfuse3 low-level C server with the same timeouts serving the same names (bench/common/ref-server.c), both
 * mounted side by side and measured alternately by the same pthread C client (bench/common/stat-client.c); then, with handlefs
 * still mounted and its entries cached, how long a killed process's name stays visible.
 *
 *   node --import tsx bench/tree-stat/run.ts [--seconds S] [--rounds R] [--procs N] [--kills K] [--uncached] [--ref-loop loop|mt] [--write]
 *
 * --uncached: both servers with entry_timeout = attr_timeout = 0, so every stat reaches the server
 * (LOOKUP pid/<pid> + GETATTR): the server's own speed, not the kernel's cache. --ref-loop: the C
 * server's loop, single-threaded `loop` or libfuse's multi-threaded default `mt` (the strongest
 * reference, and the default with --uncached).
 *
 * Needs root and /dev/fuse. Installs gcc + libfuse3-dev with apt-get when missing; builds dist/
 * with tsup when dist/cli/main.js is missing. Builds the C programs into bench/out/tree-stat/.
 * --write puts the report in bench/out/tree-stat/report.md, for docs/benchmarks.md. Every server and child is stopped, every
 * mount removed and the temporary directory deleted in every outcome (including Ctrl-C).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  PLACEMENTS,
  REF_SERVER,
  STAT_CLIENT,
  arg,
  buildC,
  cleanupAll,
  cpuTimes,
  ensureTools,
  exited,
  flag,
  forceUnmount,
  loadLine,
  machine,
  measure,
  median,
  place,
  requireRootAndFuse,
  root,
  runMain,
  servingPid,
  sleep,
  stopServer,
  tempDir,
  track,
  untrack,
  waitAnswers,
  writeNameFile,
  writeReport,
  type Placement,
} from '../common/harness.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const cliMain = path.join(root, 'dist/cli/main.js');

const SECONDS = arg('seconds', 2);
const ROUNDS = arg('rounds', 5);
const PROCS = arg('procs', 200);
const KILLS = arg('kills', 20);
const GAP_MS = 20;
const THREADS = [1, 2];
const WRITE = flag('write');
const UNCACHED = flag('uncached');
const REF_LOOP = (() => {
  const i = process.argv.indexOf('--ref-loop');
  const v = i >= 0 ? process.argv[i + 1] : UNCACHED ? 'mt' : 'loop';
  if (v !== 'loop' && v !== 'mt') throw new Error(`--ref-loop: loop or mt, not ${v}`);
  return v;
})();
const TIMEOUT = UNCACHED ? 0 : 3600;

/** CPU µs per FUSE request over a run. */
function perRequestUs(cpuSeconds: number, c: Counters): string {
  const n = c.requests ?? 0;
  return n > 0 ? ((cpuSeconds * 1e6) / n).toFixed(1) : 'n/a';
}

// ---------- build ----------

function build(): { ref: string; client: string; procs: string } {
  const bins = buildC('tree-stat', [REF_SERVER, STAT_CLIENT, { name: 'procs', src: path.join(here, 'procs.c') }]);
  if (!fs.existsSync(cliMain)) {
    console.error('dist/cli/main.js missing: building with tsup...');
    execFileSync('npx', ['tsup'], { cwd: root, stdio: 'inherit' });
  }
  return { ref: bins[REF_SERVER.name]!, client: bins[STAT_CLIENT.name]!, procs: bins.procs! };
}

// ---------- the processes (children of procs.c) ----------

class Procs {
  private buf = '';
  private waiters: Array<(line: string) => void> = [];
  private lines: string[] = [];
  constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const w = this.waiters.shift();
        if (w) w(line);
        else this.lines.push(line);
      }
    });
  }
  line(timeoutMs: number): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('procs helper did not answer')), timeoutMs);
      this.waiters.push((line) => {
        clearTimeout(t);
        resolve(line);
      });
    });
  }
  send(cmd: string): void {
    this.child.stdin!.write(`${cmd}\n`);
  }
}

// ---------- servers ----------

type Kind = 'hfs' | 'c';
const LABEL: Record<Kind, string> = {
  hfs: UNCACHED ? 'handlefs (timeouts 0)' : 'handlefs (defaults)',
  c: `libfuse C ${REF_LOOP === 'mt' ? 'multi-threaded' : 'single-threaded'}, ${TIMEOUT} s timeouts`,
};

interface Server {
  kind: Kind;
  child: ChildProcess;
  mnt: string;
  /** The process that answers requests (for handlefs the keeper's child, not `child`). */
  server: number;
}

function hfsEnv(runtime: string): NodeJS.ProcessEnv {
  return { ...process.env, HANDLEFS_RUNTIME_DIR: runtime };
}

async function startHandlefs(mnt: string, state: string, runtime: string, logPath: string, probeName: string): Promise<Server> {
  const log = fs.openSync(logPath, 'a');
  const options = UNCACHED ? ['-o', 'entry_timeout=0,attr_timeout=0'] : [];
  const child = spawn(process.execPath, [cliMain, 'mount', mnt, '--state', state, ...options], {
    cwd: root,
    env: hfsEnv(runtime),
    stdio: ['ignore', log, log],
  });
  fs.closeSync(log);
  track(child, mnt);
  await waitAnswers(mnt, `pid/${probeName}`, 'handlefs', child);
  return { kind: 'hfs', child, mnt, server: servingPid(mnt, hfsEnv(runtime)) };
}

async function startRef(bin: string, mnt: string, nameFile: string, outPath: string, probeName: string): Promise<Server> {
  const out = fs.openSync(outPath, 'a');
  const child = spawn(bin, [mnt, '-f', nameFile, '-t', String(TIMEOUT), '-l', REF_LOOP, '-c', '-F', 'ref_cached'], { stdio: ['ignore', out, 'inherit'] });
  fs.closeSync(out);
  track(child, mnt);
  await waitAnswers(mnt, `pid/${probeName}`, 'ref-server', child);
  return { kind: 'c', child, mnt, server: child.pid! };
}

async function stopHandlefs(s: Server, runtime: string): Promise<void> {
  const r = spawnSync(process.execPath, [cliMain, 'umount', s.mnt], { env: hfsEnv(runtime), encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) console.error(`warning: handlefs umount exited ${r.status}: ${r.stderr?.trim()}`);
  if (!(await exited(s.child, 10_000))) {
    console.error('warning: handlefs service did not exit after umount; killing it');
    s.child.kill('SIGKILL');
    await exited(s.child, 5000);
  } else if (s.child.exitCode !== 0) {
    console.error(`warning: handlefs service exited with ${s.child.exitCode ?? s.child.signalCode}`);
  }
  forceUnmount(s.mnt);
  untrack(s.child, s.mnt);
}

async function stopRef(s: Server): Promise<void> {
  await stopServer(s.child, s.mnt);
}

type Counters = Record<string, number>;

/**
 * What the server has handled so far. handlefs (status over its control socket, not through the
 * mount): FUSE requests and forgets of the session, lookups of the inode table. C: its counters.
 */
async function counters(s: Server, runtime: string, refOut: string): Promise<Counters> {
  if (s.kind === 'hfs') {
    const out = execFileSync(process.execPath, [cliMain, 'status', s.mnt, '--json'], { env: hfsEnv(runtime), encoding: 'utf8' });
    const j = JSON.parse(out) as { requests: { requests: number; forgets: number } | null; counters: { lookups: number } };
    return { requests: j.requests?.requests ?? NaN, lookup: j.counters.lookups, forget: j.requests?.forgets ?? NaN };
  }
  const before = fs.readFileSync(refOut, 'utf8').length;
  s.child.kill('SIGUSR1');
  for (let i = 0; i < 100; i++) {
    await sleep(5);
    const line = /^requests .*$/m.exec(fs.readFileSync(refOut, 'utf8').slice(before));
    if (line) {
      const f = line[0].split(' ');
      const c: Counters = {};
      for (let j = 0; j + 1 < f.length; j += 2) c[f[j]!] = Number(f[j + 1]);
      return c;
    }
  }
  return { requests: NaN };
}

function diff(a: Counters, b: Counters): Counters {
  return Object.fromEntries(Object.keys(b).map((k) => [k, b[k]! - (a[k] ?? 0)]));
}

function fmtCounters(c: Counters): string {
  return Object.entries(c)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}

// ---------- measuring ----------

/** utime + stime of a process (all threads), in seconds. */
function cpuSeconds(pid: number): number {
  const t = cpuTimes(pid);
  return t.user + t.sys;
}

interface ExitSample {
  pid: number;
  killToEnoent: number;
  reapToEnoent: number;
  killToReap: number;
  okAfterReap: number;
  err: number;
}

// ---------- main ----------

async function main(): Promise<void> {
  requireRootAndFuse();
  ensureTools();
  const bins = build();
  const t0 = Date.now();

  const base = tempDir('tree-stat-');
  // Same-length mountpoint paths, so the client's path walks are the same length for both.
  const mntH = path.join(base, 'mh');
  const mntC = path.join(base, 'mc');
  fs.mkdirSync(mntH);
  fs.mkdirSync(mntC);
  const runtime = path.join(base, 'run');
  fs.mkdirSync(runtime);
  const state = path.join(base, 'state.db');
  const pidFile = path.join(base, 'pids');
  const nameFile = path.join(base, 'names');
  const hfsLog = path.join(base, 'handlefs.log');
  const refOut = path.join(base, 'ref.out');

  const results = Object.fromEntries(
    PLACEMENTS.map((p) => [p, { hfs: {} as Record<number, number[]>, c: {} as Record<number, number[]> }]),
  ) as Record<Placement, Record<Kind, Record<number, number[]>>>;
  // Requests the server received during each run (same shape as results).
  const reqs = Object.fromEntries(
    PLACEMENTS.map((p) => [p, { hfs: {} as Record<number, number[]>, c: {} as Record<number, number[]> }]),
  ) as Record<Placement, Record<Kind, Record<number, number[]>>>;
  const reqDuring: Record<Kind, Counters> = { hfs: {}, c: {} };
  const cpuDuring: Record<Kind, number> = { hfs: NaN, c: NaN };
  const exits: ExitSample[] = [];
  const exitErrors: string[] = [];
  let hfsStatusAfter: unknown = null;

  const procsChild = spawn(bins.procs, [String(PROCS), pidFile], { stdio: ['pipe', 'pipe', 'inherit'] });
  track(procsChild);
  const procs = new Procs(procsChild);
  let hfs: Server | null = null;
  let ref: Server | null = null;
  try {
    const first = await procs.line(30_000);
    if (first !== 'ready') throw new Error(`procs helper: ${first}`);
    const pids = fs.readFileSync(pidFile, 'utf8').trim().split('\n');
    console.error(`${pids.length} sleep children started`);
    writeNameFile(nameFile, pids.map((p) => `pid/${p}`));

    hfs = await startHandlefs(mntH, state, runtime, hfsLog, pids[0]!);
    ref = await startRef(bins.ref, mntC, nameFile, refOut, pids[0]!);
    const servers: Record<Kind, Server> = { hfs, c: ref };

    // Warm-up: one pass (every name looked up, cached for 3600 s), then 1 s of load (caches, CPU clocks).
    for (const k of ['hfs', 'c'] as Kind[]) {
      measure(bins.client, servers[k].mnt, nameFile, 0, 1, 'unpinned');
      measure(bins.client, servers[k].mnt, nameFile, 1, 1, 'unpinned');
    }
    const reqBefore = { hfs: await counters(hfs, runtime, refOut), c: await counters(ref, runtime, refOut) };
    const cpuBefore = { hfs: cpuSeconds(hfs.server), c: cpuSeconds(ref.server) };

    for (let round = 0; round < ROUNDS; round++) {
      for (const placement of PLACEMENTS) {
        for (const k of ['hfs', 'c'] as Kind[]) place(servers[k].server, placement);
        for (const t of THREADS) {
          // Alternate which server goes first.
          const order: Kind[] = (round + t) % 2 === 0 ? ['hfs', 'c'] : ['c', 'hfs'];
          for (const k of order) {
            const c0 = await counters(servers[k], runtime, refOut);
            const v = measure(bins.client, servers[k].mnt, nameFile, SECONDS, t, placement);
            const d = diff(c0, await counters(servers[k], runtime, refOut));
            (results[placement][k][t] ??= []).push(v);
            (reqs[placement][k][t] ??= []).push(d.requests!);
            console.error(`round ${round + 1} ${placement} threads=${t} ${LABEL[k]}: ${v} stat/s (${fmtCounters(d)})`);
          }
        }
      }
    }
    reqDuring.hfs = diff(reqBefore.hfs, await counters(hfs, runtime, refOut));
    reqDuring.c = diff(reqBefore.c, await counters(ref, runtime, refOut));
    cpuDuring.hfs = cpuSeconds(hfs.server) - cpuBefore.hfs;
    cpuDuring.c = cpuSeconds(ref.server) - cpuBefore.c;
    // The status request itself is one control-socket exchange, not a FUSE request.

    await stopRef(ref);
    ref = null;

    // Exits: handlefs still mounted, every name cached. Kill K children one by one.
    place(hfs.server, 'unpinned');
    procs.send(`probe ${mntH} ${KILLS} ${GAP_MS}`);
    for (;;) {
      const line = await procs.line(KILLS * 6000 + 10_000);
      if (line === 'done') break;
      const f = line.split(' ');
      if (f[0] === 'exit') {
        exits.push({
          pid: Number(f[1]),
          killToEnoent: Number(f[2]),
          reapToEnoent: Number(f[3]),
          killToReap: Number(f[4]),
          okAfterReap: Number(f[5]),
          err: Number(f[6]),
        });
      } else {
        exitErrors.push(line);
      }
    }
    for (const e of exits) console.error(`exit pid ${e.pid}: kill->ENOENT ${e.killToEnoent.toFixed(2)} ms, reap->ENOENT ${e.reapToEnoent.toFixed(2)} ms (err ${e.err})`);
    const st = execFileSync(process.execPath, [cliMain, 'status', mntH, '--json'], { env: hfsEnv(runtime), encoding: 'utf8' });
    hfsStatusAfter = JSON.parse(st);
  } finally {
    if (ref !== null) await stopRef(ref).catch(() => {});
    if (hfs !== null) await stopHandlefs(hfs, runtime).catch(() => {});
    if (procsChild.exitCode === null) {
      procs.send('quit');
      if (!(await exited(procsChild, 5000))) procsChild.kill('SIGKILL');
    }
    untrack(procsChild);
    if (fs.existsSync(hfsLog)) {
      const warnings = fs
        .readFileSync(hfsLog, 'utf8')
        .split('\n')
        .filter((l) => /"level":(40|50|60)/.test(l));
      if (warnings.length > 0) console.error(`handlefs logged ${warnings.length} warning/error line(s), e.g.:\n${warnings.slice(0, 3).join('\n')}`);
    }
    cleanupAll();
  }
  const elapsed = (Date.now() - t0) / 1000;

  // ---------- report ----------
  const L: string[] = [];
  L.push(`# Tree stat benchmark: live handles, ${UNCACHED ? 'uncached (timeouts 0: every stat reaches the server)' : 'kernel-cached'} (bench/tree-stat)`);
  L.push('');
  L.push(
    UNCACHED
      ? 'Goal (issue 13): with entry and attribute timeouts 0, `stat()` throughput on live handles ≥ 0.9× a multi-threaded ' +
          'libfuse3 low-level C server serving the same names, with 1 and 2 client threads; CPU per request reported for both.'
      : 'Goal (the issue): with default options, `stat()` throughput on live handles ≥ 0.9× a libfuse3 C server with long ' +
          'timeouts (kernel-cached) on the same names, while exits still disappear within 100 ms.',
  );
  L.push('');
  L.push('## Method');
  L.push('');
  L.push(
    `- ${PROCS} live processes (\`sleep 3600\` children of \`procs.c\`), so \`pid/<pid>\` exists for each.`,
  );
  L.push(
    '- **handlefs**: the real service, `node dist/cli/main.js mount MNT --state FILE`, default options ' +
      `(entry_timeout = attr_timeout = ${TIMEOUT} s; exits invalidated with INVAL_ENTRY/INVAL_INODE), temporary state file ` +
      'and `HANDLEFS_RUNTIME_DIR`.',
  );
  L.push(
    `- **libfuse C**: \`bench/common/ref-server.c\`, libfuse3 low-level API, ${REF_LOOP === 'mt' ? "libfuse's default multi-threaded `fuse_session_loop_mt`" : 'single-threaded `fuse_session_loop`'}, serving ` +
      `\`pid/<pid>\` for the same pids as regular files from memory, entry_timeout = attr_timeout = ${TIMEOUT} s. It never ` +
      (UNCACHED
        ? 'learns of exits and reads nothing per request: a lookup in a sorted table, the ceiling for a FUSE server.'
        : 'learns of exits (its names stay for an hour): the ceiling for cached stat, with no correctness obligation.'),
  );
  L.push(
    `- Both mounted side by side (mountpoint paths of equal length). Client: \`bench/common/stat-client.c\`, T pthreads \`stat()\` ` +
      `\`MNT/pid/<pid>\` over all ${PROCS} names round-robin for ${SECONDS} s; any failed stat is fatal. Warm-up: one ` +
      'pass (every name looked up and cached) and 1 s of load per server. Then ' +
      `${ROUNDS} rounds; in each, per placement and thread count, one run per server, the server going first alternating. Medians.`,
  );
  L.push(
    '- Placements, as in bench/fuse-stat: **one-cpu** = client and server (all threads) pinned to CPU 0 with taskset; ' +
      '**unpinned** = the scheduler decides. (With cached entries the servers are not involved, so placement matters ' +
      'for the client only: 2 threads can use 2 CPUs when unpinned.)',
  );
  L.push(
    `- Exits: after the throughput rounds, the C server unmounted, handlefs still mounted with every name cached, ` +
      `${KILLS} children are killed one by one (SIGKILL, ${GAP_MS} ms apart) by \`procs.c\` (a child process of the ` +
      'bench): it checks `stat(MNT/pid/<pid>)` succeeds, kills, `waitpid()`s, then `stat()`s every 100 µs until ENOENT. ' +
      'Times from the kill and from the reap.',
  );
  L.push('');
  L.push(`Machine: ${machine()}. Run took ${elapsed.toFixed(0)} s.`);
  L.push('');
  L.push('## Throughput (stat/s)');
  L.push('');
  L.push(`| placement | client threads | handlefs (stat/s) | ${LABEL.c} (stat/s) | **handlefs / C** |`);
  L.push('| --- | --- | --- | --- | --- |');
  const ratios: number[] = [];
  for (const p of PLACEMENTS) {
    for (const t of THREADS) {
      const h = median(results[p].hfs[t] ?? []);
      const c = median(results[p].c[t] ?? []);
      ratios.push(h / c);
      L.push(`| ${p} | ${t} | ${h.toFixed(0)} | ${c.toFixed(0)} | **${(h / c).toFixed(2)}** |`);
    }
  }
  L.push('');
  L.push(
    'Every round (stat/s; per-round ratio handlefs / C of the adjacent runs). `[n]` after a figure: the server received ' +
      'n FUSE requests during that run, i.e. the kernel had dropped cached entries (something else on the machine ' +
      'shrank the dentry cache) and that run paid for lookups:',
  );
  L.push('');
  const mark = (v: number, r: number | undefined) => `${v}${r ? ` [${r}]` : ''}`;
  for (const p of PLACEMENTS) {
    for (const t of THREADS) {
      const h = results[p].hfs[t] ?? [];
      const c = results[p].c[t] ?? [];
      const hr = reqs[p].hfs[t] ?? [];
      const cr = reqs[p].c[t] ?? [];
      L.push(
        `- ${p}, ${t} thread(s): handlefs ${h.map((x, i) => mark(x, hr[i])).join(', ')}; C ${c.map((x, i) => mark(x, cr[i])).join(', ')}; ` +
          `ratio ${h.map((x, i) => (x / c[i]!).toFixed(2)).join(', ')}`,
      );
    }
  }
  L.push('');
  let disturbed = 0;
  let total = 0;
  for (const p of PLACEMENTS) {
    for (const t of THREADS) {
      for (const k of ['hfs', 'c'] as Kind[]) {
        for (const r of reqs[p][k][t] ?? []) {
          total++;
          if (r) disturbed++;
        }
      }
    }
  }
  L.push(
    `FUSE requests the servers received during the throughput rounds (after warm-up; totals): handlefs ${fmtCounters(reqDuring.hfs)}; ` +
      `C ${fmtCounters(reqDuring.c)}. ${disturbed} of ${total} runs received any. Server CPU time over the rounds: handlefs ` +
      `${cpuDuring.hfs.toFixed(2)} s, C ${cpuDuring.c.toFixed(2)} s (of ${(ROUNDS * PLACEMENTS.length * THREADS.length * SECONDS * 2).toFixed(0)} s measured; ` +
      "handlefs's includes its periodic /proc sweep, every 10 s). " +
      (UNCACHED
        ? `Server CPU per request: handlefs ${perRequestUs(cpuDuring.hfs, reqDuring.hfs)} µs, C ${perRequestUs(cpuDuring.c, reqDuring.c)} µs ` +
          '(all threads of each server; 10 ms ticks). With timeouts 0 every stat is a LOOKUP and a GETATTR round trip.'
        : 'In an undisturbed run every stat is answered by the kernel ' +
          'from its dentry and attribute caches without a request, so both servers measure the same kernel path. Runs marked ' +
          '`[n]` overlapped something that dropped the caches (the test suite, spec/fuse/mount.spec.ts, writes 2 to ' +
          '/proc/sys/vm/drop_caches); the next stat of each name is then a LOOKUP round trip to the server.'),
  );
  L.push('');
  L.push('## Exits (handlefs, cached names)');
  L.push('');
  const ok = exits.filter((e) => e.err === 0);
  const stat = (f: (e: ExitSample) => number) => {
    const xs = ok.map(f);
    return { med: median(xs), max: xs.length ? Math.max(...xs) : NaN };
  };
  const k2e = stat((e) => e.killToEnoent);
  const r2e = stat((e) => e.reapToEnoent);
  const k2r = stat((e) => e.killToReap);
  L.push(`${ok.length} of ${exits.length} killed processes' names answered ENOENT` + (exitErrors.length ? ` (${exitErrors.length} probe errors: ${exitErrors.join('; ')})` : '') + '.');
  L.push('');
  L.push('| interval | median (ms) | max (ms) | goal |');
  L.push('| --- | --- | --- | --- |');
  L.push(`| kill → stat ENOENT | ${k2e.med.toFixed(2)} | **${k2e.max.toFixed(2)}** | < 100 |`);
  L.push(`| reap (waitpid returned) → stat ENOENT | ${r2e.med.toFixed(2)} | ${r2e.max.toFixed(2)} | |`);
  L.push(`| kill → reap | ${k2r.med.toFixed(2)} | ${k2r.max.toFixed(2)} | |`);
  L.push('');
  L.push(`Every exit (kill → ENOENT, ms): ${exits.map((e) => (e.err === 0 ? e.killToEnoent.toFixed(2) : `fail(${e.err})`)).join(', ')}`);
  L.push('');
  L.push(`Successful stats after the reap, before ENOENT (polled every 100 µs): ${exits.map((e) => e.okAfterReap).join(', ')}`);
  L.push('');
  const s = hfsStatusAfter as { kinds?: Record<string, { live: number; dead: number; instantiated: number }> } | null;
  if (s?.kinds?.process) {
    const pk = s.kinds.process;
    L.push(`handlefs status after the exits: process handles live ${pk.live}, dead ${pk.dead}, held by the kernel ${pk.instantiated}.`);
    L.push('');
  }
  L.push('## Verdict');
  L.push('');
  const minRatio = Math.min(...ratios);
  L.push(
    `Throughput ratio handlefs / C: ${ratios.map((r) => r.toFixed(2)).join(', ')} (one-cpu 1, 2 threads; unpinned 1, 2 threads); ` +
      `lowest ${minRatio.toFixed(2)} — goal ≥ 0.9: **${minRatio >= 0.9 ? 'met' : 'not met'}**. ` +
      `Exits: max kill → ENOENT ${k2e.max.toFixed(2)} ms — goal < 100 ms: **${ok.length === exits.length && exits.length > 0 && k2e.max < 100 ? 'met' : 'not met'}**.`,
  );
  L.push('');
  L.push(loadLine());
  L.push('');
  L.push('Run: `node --import tsx bench/tree-stat/run.ts [--seconds S] [--rounds R] [--procs N] [--kills K] [--uncached] [--ref-loop loop|mt] [--write]` (root).');
  writeReport('tree-stat', L, WRITE);
}

runMain(main);
