/**
 * The operator commands against a real mount: `handlefs ls` (with a bind mount of a namespace
 * handle, as `ip netns` makes them) and `handlefs status --prometheus`, through the built bin.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT } from '../../src/cli/exit-codes.js';
import type { HandleRow } from '../../src/service/handles.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'dist/cli/main.js');
const canMount = fs.existsSync('/dev/fuse') && process.getuid?.() === 0;
const mountTest = canMount ? test.serial : test.serial.skip;
if (!canMount) console.log('ops.spec: needs root and /dev/fuse; the real-mount tests are skipped');

function run(args: string[], env: NodeJS.ProcessEnv) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function mountedAt(p: string): boolean {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === p);
}

/** A foreground service at a fresh mountpoint; everything it mounted is undone in every outcome. */
async function serve(t: ExecutionContext) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'handlefs-ops-'));
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  const env = { HANDLEFS_RUNTIME_DIR: path.join(dir, 'run') };
  const child: ChildProcess = spawn(process.execPath, [BIN, 'mount', mnt, '--state', path.join(dir, 'state.db')], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  const binds: string[] = [];
  t.teardown(() => {
    for (const b of binds) if (mountedAt(b)) spawnSync('umount', ['-l', b]);
    if (mountedAt(mnt)) spawnSync('umount', ['-l', mnt]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  // The keeper starts the serving process, which opens the store: seconds on a loaded machine.
  const deadline = Date.now() + 60_000;
  while (!/handlefs started/.test(stderr)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`mount did not become ready: ${stderr}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { dir, mnt, env, binds, exited };
}

mountTest('ls lists each handle with its holders, a bind mount of a namespace handle by its path', async (t) => {
  const s = await serve(t);
  const netInum = Number(/\[(\d+)\]/.exec(fs.readlinkSync('/proc/self/ns/net'))![1]);
  const target = path.join(s.dir, 'netns-bound');
  fs.writeFileSync(target, '');
  // What `ip netns attach` does with nsfs, done with our handle (from a child: never stat our own mount here).
  const bind = spawnSync('mount', ['--bind', path.join(s.mnt, 'ns/net', String(netInum)), target], { encoding: 'utf8', timeout: 15_000 });
  t.is(bind.status, 0, bind.stderr);
  s.binds.push(target);
  t.is(spawnSync('cat', [path.join(s.mnt, 'pid', String(process.pid))], { timeout: 15_000 }).status, 0);

  const json = run(['ls', s.mnt, '--json'], s.env);
  t.is(json.code, 0, json.stderr);
  const rows = JSON.parse(json.stdout) as HandleRow[];
  const ns = rows.find((r) => r.kind === 'namespace' && r.key === netInum);
  t.like(ns, { name: 'net', state: 'live', held: true });
  t.deepEqual(ns?.mounts, [target], "the bind mount is named by its path (after the idle handle's name was invalidated too)");
  t.true(ns!.lookups >= 1, 'a bind mount holds a kernel lookup');
  const me = rows.find((r) => r.kind === 'process' && r.key === process.pid);
  t.like(me, { name: 'node', held: null });

  const text = run(['ls', s.mnt], s.env);
  t.is(text.code, 0, text.stderr);
  const lines = text.stdout.trimEnd().split('\n');
  t.regex(lines[0]!, /^\s*INO KIND\s+KEY NAME\s+STATE\s+LOOKUPS OPENS PINS HELD MOUNTS$/);
  t.is(lines.length, rows.length + 1);
  t.true(lines.some((l) => l.includes(` ${netInum} net `) && l.endsWith(target)), text.stdout);

  t.is(spawnSync('umount', [target]).status, 0);
  const after = JSON.parse(run(['ls', s.mnt, '--json'], s.env).stdout) as HandleRow[];
  t.deepEqual(after.find((r) => r.key === netInum)?.mounts ?? [], [], 'gone from the listing once unmounted');

  t.is(run(['umount', s.mnt], s.env).code, 0);
  t.is(await s.exited, 0);
});

mountTest('ls without MNT, and of something not mounted', async (t) => {
  const others = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => / - fuse\.handlefs /.test(l));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'handlefs-ops-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const r = run(['ls', dir], {});
  t.is(r.code, EXIT.notMounted, r.stderr);
  t.regex(r.stderr, /is not mounted/);
  if (others.length === 0) {
    // Nothing mounted at all: the hint says to name one.
    const none = run(['ls'], {});
    t.is(none.code, EXIT.notMounted);
    t.regex(none.stderr, /no handlefs filesystem is mounted here[\s\S]*handlefs ls MNT/);
  }
});

mountTest('status --prometheus: handles by kind, request latency by opcode, store commits', async (t) => {
  const s = await serve(t);
  t.is(spawnSync('ls', [path.join(s.mnt, 'pid')], { timeout: 15_000 }).status, 0);
  t.is(spawnSync('cat', [path.join(s.mnt, 'pid', String(process.pid))], { timeout: 15_000 }).status, 0);
  const r = run(['status', s.mnt, '--prometheus'], s.env);
  t.is(r.code, 0, r.stderr);
  const text = r.stdout;
  t.regex(text, /^# TYPE handlefs_handles gauge$/m);
  t.regex(text, /^handlefs_handles\{kind="process",state="live"\} [1-9]\d*$/m);
  t.regex(text, /^handlefs_fuse_request_duration_seconds_count\{opcode="LOOKUP"\} [1-9]\d*$/m);
  t.regex(text, /^handlefs_fuse_request_duration_seconds_count\{opcode="READDIRPLUS"\} [1-9]\d*$/m);
  t.regex(text, /^handlefs_fuse_request_duration_seconds_bucket\{le="\+Inf",opcode="OPEN"\} [1-9]\d*$/m);
  t.regex(text, /^handlefs_allocations_total [1-9]\d*$/m);
  t.regex(text, /^handlefs_store_commits_total [1-9]\d*$/m);
  t.regex(text, /^handlefs_store_commit_duration_seconds_count [1-9]\d*$/m);
  t.regex(text, /^handlefs_exit_notification_delay_seconds_count \d+$/m);
  t.regex(text, /^handlefs_info\{version="[^"]+",protocol="7\.\d+",reader="\w[\w-]*",mountpoint="[^"]+"\} 1$/m);
  t.is(run(['umount', s.mnt], s.env).code, 0);
  t.is(await s.exited, 0);
});
