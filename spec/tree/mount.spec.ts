/**
 * The handle tree mounted for real, over the real /proc sources. Every access to the mount comes
 * from a child process (a synchronous fs call on the mount from the serving process would
 * deadlock it). Serial: the tests share the machine's pid counter and two cores.
 *
 * Every test unmounts in every outcome (t.teardown, `umount -l` as the last resort). Skipped,
 * with a message, only where /dev/fuse is absent.
 */
import test, { type ExecutionContext } from 'ava';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { Opcode } from '../../src/fuse/abi.js';
import { mountAt, serve } from '../../src/fuse/mount.js';
import type { Notifier } from '../../src/fuse/types.js';
import type { HandleTreeOptions } from '../../src/tree/handle-fs.js';
import { PID_DIR } from '../../src/tree/layout.js';
import { CAN_CHOOSE_PIDS, startAtPid } from '../helpers/at-pid.js';
import { fields } from './harness.js';
import { assembleRealTree } from '../helpers/real-tree.js';

const HAVE_FUSE = fs.existsSync('/dev/fuse');
const execFileP = promisify(execFile);
const fuseTest = HAVE_FUSE ? test.serial : test.serial.skip;
if (!HAVE_FUSE) test.skip('real-mount tests of the handle tree (skipped: /dev/fuse does not exist on this machine)', () => {});

function forceUnmount(p: string): void {
  if (mountAt(p)) spawnSync('umount', ['-i', '-c', '-l', p], { stdio: 'ignore' });
}

interface Delivery {
  op: string;
  parent: number;
  name: string;
  at: number;
}

async function mountTree(t: ExecutionContext, options: HandleTreeOptions = {}) {
  const mnt = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'handlefs-tree-')));
  const logger = pino({ level: 'warn' });
  const { tree, table, unbind } = assembleRealTree(logger, options);
  // Record when the kernel took each invalidation.
  const deliveries: Delivery[] = [];
  const init = tree.init.bind(tree);
  tree.init = (conn, n) => {
    const wrapped: Notifier = {
      get supports() {
        return n.supports;
      },
      invalEntry: async (parent, name) => {
        const r = await n.invalEntry(parent, name);
        deliveries.push({ op: 'entry', parent, name, at: performance.now() });
        return r;
      },
      expireEntry: (parent, name) => n.expireEntry(parent, name),
      invalInode: (ino, off, len) => n.invalInode(ino, off, len),
      delete: (parent, child, name) => n.delete(parent, child, name),
    };
    init(conn, wrapped);
  };
  const session = await serve(tree, mnt, { entryTimeout: 3600, attrTimeout: 3600 }, logger, { handleSignals: false });
  t.teardown(async () => {
    await session.stop('teardown').catch(() => undefined);
    forceUnmount(mnt);
    unbind();
    fs.rmSync(mnt, { recursive: true, force: true });
  });
  return { mnt, tree, table, session, deliveries };
}

/** A child we kill in teardown whatever happens. */
function child(t: ExecutionContext, cmd: string, args: string[]): ChildProcess {
  const c = spawn(cmd, args, { stdio: 'ignore' });
  t.teardown(() => {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  return c;
}

async function statIno(p: string): Promise<number> {
  const { stdout } = await execFileP('stat', ['-c', '%i', p], { timeout: 30_000 });
  return Number(stdout.trim());
}

/** The error stat(1) reports, or 'ok'. */
async function statError(p: string): Promise<string> {
  try {
    await execFileP('stat', ['-c', '%i', p], { timeout: 30_000 });
    return 'ok';
  } catch (err) {
    const s = String((err as { stderr?: string }).stderr ?? err);
    if (s.includes('No such file')) return 'ENOENT';
    if (s.includes('File name too long')) return 'ENAMETOOLONG';
    if (s.includes('Stale file handle')) return 'ESTALE';
    return s;
  }
}

async function cat(p: string): Promise<string> {
  return (await execFileP('cat', [p], { timeout: 30_000 })).stdout;
}

function exited(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((r) => c.once('exit', () => r()));
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

/** Namespaces our own process holds open, as `net:[N]` strings. */
function ourNsFds(): string[] {
  const out: string[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const l = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (/^[a-z]+:\[\d+\]$/.test(l)) out.push(l);
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

fuseTest('identity across routes: pid/<pid>, by-ino/<ino>, ls -i and the file text agree (from child processes)', async (t) => {
  const { mnt } = await mountTree(t);
  const s = child(t, 'sleep', ['60']);
  const ino = await statIno(`${mnt}/pid/${s.pid}`);
  t.true(ino >= 1024);
  t.is(await statIno(`${mnt}/by-ino/${ino}`), ino);
  const { stdout } = await execFileP('ls', ['-i', `${mnt}/pid`], { timeout: 30_000 });
  const line = stdout.split('\n').find((l) => l.trim().endsWith(` ${s.pid}`));
  t.truthy(line, 'listed');
  t.is(Number(line!.trim().split(/\s+/)[0]), ino, 'd_ino == st_ino');
  const f = fields(await cat(`${mnt}/pid/${s.pid}`));
  t.is(f.Pid, String(s.pid));
  t.is(f.Comm, 'sleep');
  t.is(f.Ino, String(ino));
  t.regex(f['Ns.net']!, /^\d+$/);
  t.is(await statIno(`${mnt}/ns/net/${(await fs.promises.readlink(`/proc/${s.pid}/ns/net`)).match(/\d+/)![0]}`), Number(f['Ns.net']));
  const init = fields(await cat(`${mnt}/pid/1`));
  t.is(init.Pid, '1');
  t.log(`pid 1 Ns.net: ${init['Ns.net']}`);
});

fuseTest('32 concurrent first lookups from child processes: one inode', async (t) => {
  const { mnt, table } = await mountTree(t);
  const s = child(t, 'sleep', ['60']);
  await until(() => fs.existsSync(`/proc/${s.pid}`), 2000);
  const before = table.counters().allocations;
  const inos = await Promise.all(Array.from({ length: 32 }, () => statIno(`${mnt}/pid/${s.pid}`)));
  t.is(new Set(inos).size, 1);
  t.is(table.counters().allocations - before, 1);
});

const reuseTest = CAN_CHOOSE_PIDS ? fuseTest : test.serial.skip;

reuseTest(`pid reuse: a new number, the old by-ino is ENOENT, a descriptor opened before reads Pid -1 and dead${CAN_CHOOSE_PIDS ? '' : ' (skipped: pids cannot be chosen here)'}`, async (t) => {
  const { mnt } = await mountTree(t);
  const victim = child(t, 'sleep', ['60']);
  const pid = victim.pid!;
  const oldIno = await statIno(`${mnt}/pid/${pid}`);
  // A reader that opens the handle now and reads it when told to.
  const reader = spawn('sh', ['-c', `exec 3<"${mnt}/pid/${pid}"; echo open; read go; cat <&3`], { stdio: ['pipe', 'pipe', 'ignore'] });
  t.teardown(() => {
    if (reader.exitCode === null) reader.kill('SIGKILL');
  });
  let out = '';
  reader.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  t.true(await until(() => out.includes('open\n'), 10_000));
  victim.kill('SIGKILL');
  await exited(victim);
  // The kernel caches the name for the entry timeout until the exit invalidation lands (within
  // milliseconds, see the exit test); a pid reused before that would still resolve to the old handle.
  let gone = '';
  for (const end = Date.now() + 10_000; Date.now() < end && gone !== 'ENOENT'; ) gone = await statError(`${mnt}/pid/${pid}`);
  t.is(gone, 'ENOENT', 'the exited name is dropped');
  const reused = await startAtPid(pid, 'sleep', ['60']);
  t.teardown(() => {
    if (reused.child.exitCode === null) reused.child.kill('SIGKILL');
  });
  const newIno = await statIno(`${mnt}/pid/${pid}`);
  t.true(newIno > oldIno, `${newIno} > ${oldIno}`);
  t.is(await statError(`${mnt}/by-ino/${oldIno}`), 'ENOENT');
  reader.stdin!.write('go\n');
  await exited(reader);
  const f = fields(out.slice(out.indexOf('open\n') + 5));
  t.is(f.Pid, '-1');
  t.is(f.State, 'dead');
  t.is(f.Ino, String(oldIno));
});

fuseTest('exit: the kernel drops the cached name within 100 ms, despite a 3600 s entry timeout (best of 3: a load spike is not a slow path)', async (t) => {
  const { mnt, deliveries } = await mountTree(t);
  const times: number[] = [];
  for (let attempt = 0; attempt < 3 && !times.some((ms) => ms < 100); attempt++) {
    const s = child(t, 'sleep', ['60']);
    const pid = s.pid!;
    await statIno(`${mnt}/pid/${pid}`);
    t.is(await statError(`${mnt}/pid/${pid}`), 'ok');
    const t0 = performance.now();
    s.kill('SIGKILL');
    t.true(await until(() => deliveries.some((d) => d.parent === PID_DIR && d.name === String(pid)), 5000));
    const d = deliveries.find((x) => x.parent === PID_DIR && x.name === String(pid))!;
    times.push(d.at - t0);
    await exited(s);
    t.is(await statError(`${mnt}/pid/${pid}`), 'ENOENT');
  }
  t.log(`invalidation taken by the kernel ${times.map((ms) => ms.toFixed(1)).join(', ')} ms after the kill`);
  t.true(Math.min(...times) < 100, `${times.join(', ')} ms`);
});

/** A process in a new network namespace (unshare --net), and that namespace's link text. */
async function newNetns(t: ExecutionContext) {
  const ownNet = await fs.promises.readlink('/proc/self/ns/net');
  const u = child(t, 'unshare', ['--net', 'sleep', '300']);
  let link = '';
  const entered = await until(() => {
    try {
      link = fs.readlinkSync(`/proc/${u.pid}/ns/net`);
    } catch {
      link = '';
    }
    return link !== '' && link !== ownNet;
  }, 10_000);
  t.true(entered, 'unshare entered a new network namespace');
  return { u, link };
}

fuseTest('bind-mount pinning: a network namespace outlives its last process while a handle is bind-mounted, and goes after umount', async (t) => {
  const { mnt } = await mountTree(t, { nsGraceMs: 500 });
  const { u, link } = await newNetns(t);
  const inum = link.match(/\d+/)![0];
  const handle = `${mnt}/ns/net/${inum}`;
  const ino = await statIno(handle);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'handlefs-bind-')), 'netns');
  fs.writeFileSync(file, '');
  t.teardown(() => {
    forceUnmount(file);
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  });
  await execFileP('mount', ['--bind', handle, file], { timeout: 30_000 });
  u.kill('SIGKILL');
  await exited(u);
  await new Promise((r) => setTimeout(r, 2000)); // well past the grace (and its invalidation)
  t.true(ourNsFds().includes(link), 'the hold is kept while the bind mount lives');
  const f = fields(await cat(file));
  t.is(f.NsId, inum);
  t.is(f.Ino, String(ino));
  t.is(f.Held, 'yes');
  await new Promise((r) => setTimeout(r, 1000));
  t.true(ourNsFds().includes(link), 'still kept after another idle period');
  await execFileP('umount', [file], { timeout: 30_000 });
  t.true(await until(() => !ourNsFds().includes(link), 5000), 'released after unmount: the descriptor is closed');
});

fuseTest('a stat alone does not keep a namespace alive beyond the grace period', async (t) => {
  const { mnt } = await mountTree(t, { nsGraceMs: 300 });
  const { u, link } = await newNetns(t);
  await statIno(`${mnt}/ns/net/${link.match(/\d+/)![0]}`);
  t.true(ourNsFds().includes(link));
  u.kill('SIGKILL');
  await exited(u);
  t.true(await until(() => !ourNsFds().includes(link), 5000), 'the kernel forgot the unused dentry; the hold went');
});

fuseTest('close(2) costs no FLUSH round trip: the kernel is told once that there is no flush, and reads still work', async (t) => {
  const { mnt, session } = await mountTree(t);
  const ops = new Map<number, number>();
  session.observeRequests((opcode) => ops.set(opcode, (ops.get(opcode) ?? 0) + 1));
  const file = path.join(mnt, 'pid', String(process.pid));
  for (let i = 0; i < 5; i++) {
    // Asynchronous: this process serves the mount, a synchronous read would wait on itself.
    const fh = await fs.promises.open(file, 'r');
    t.regex(await fh.readFile('utf8'), new RegExp(`^Pid:\\t${process.pid}$`, 'm'));
    await fh.close(); // close(2) succeeds: ENOSYS to FLUSH is not an error for the caller
  }
  t.is(ops.get(Opcode.OPEN), 5);
  t.is(ops.get(Opcode.FLUSH), 1, 'FLUSH reaches the service once per connection');
});

fuseTest('bad names from a real lookup: ENOENT and ENAMETOOLONG', async (t) => {
  const { mnt } = await mountTree(t);
  t.is(await statError(`${mnt}/pid/01`), 'ENOENT');
  t.is(await statError(`${mnt}/pid/0`), 'ENOENT');
  t.is(await statError(`${mnt}/pid/4194305`), 'ENOENT');
  t.is(await statError(`${mnt}/pid/${'1'.repeat(300)}`), 'ENAMETOOLONG');
  t.is(await statError(`${mnt}/ns/bogus`), 'ENOENT');
  t.is(await statError(`${mnt}/ns/net/1`), 'ENOENT');
  t.is(await statError(`${mnt}/by-ino/5`), 'ENOENT');
  t.is(await statError(`${mnt}/by-ino/99999999999`), 'ENOENT');
  t.is(await statError(`${mnt}/pid/1`), 'ok');
});

/** The FUSE connection number of the mount at `mnt` (its device minor), from our mountinfo. */
function fuseConnection(mnt: string): number {
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f[4] === mnt) return Number(f[2]!.split(':')[1]);
  }
  throw new Error(`${mnt} is not in /proc/self/mountinfo`);
}

/** Ends a hung connection the only way that frees clients stuck in D state: fusectl's abort. */
function abortConnection(conn: number): void {
  const dir = '/sys/fs/fuse/connections';
  if (!fs.readFileSync('/proc/mounts', 'utf8').includes(' fusectl ')) {
    spawnSync('mount', ['-t', 'fusectl', 'fusectl', dir], { stdio: 'ignore' });
  }
  try {
    fs.writeFileSync(`${dir}/${conn}/abort`, '1');
  } catch {
    /* already gone */
  }
}

fuseTest('exits racing lookups in one directory from 6 clients never hang the mount', async (t) => {
  t.timeout(150_000);
  const { mnt } = await mountTree(t);
  const conn = fuseConnection(mnt);
  // Each client starts a process, looks its handle up and kills it: the exit invalidation of
  // pid/<p> then races the other clients' lookups in pid/, which hold the directory's lock.
  const script = 'for j in $(seq 200); do sleep 30 & p=$!; stat "$1/pid/$p" >/dev/null || echo "stat failed: $p"; kill $p; done; wait';
  const clients = Array.from({ length: 6 }, () => spawn('bash', ['-c', script, 'client', mnt], { stdio: ['ignore', 'pipe', 'pipe'], detached: true }));
  let output = '';
  for (const c of clients) {
    c.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    c.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  }
  const done = await until(() => clients.every((c) => c.exitCode !== null || c.signalCode !== null), 120_000);
  if (!done) {
    // Clients in D state ignore SIGKILL: free them before failing.
    abortConnection(conn);
  }
  for (const c of clients) {
    try {
      process.kill(-c.pid!, 'SIGKILL'); // the client and its sleeps
    } catch {
      /* all gone */
    }
  }
  t.true(done, 'the clients finished (the mount did not hang)');
  t.deepEqual(clients.map((c) => c.exitCode), clients.map(() => 0), output);
  t.is(output, '', 'no client saw an error');
  // The mount still answers.
  const s = child(t, 'sleep', ['60']);
  t.true((await statIno(`${mnt}/pid/${s.pid}`)) >= 1024);
});

fuseTest('a service out of descriptors answers EIO and never takes a live process for dead', async (t) => {
  const { mnt, table } = await mountTree(t);
  const s = child(t, 'sleep', ['60']);
  const ino = await statIno(`${mnt}/pid/${s.pid}`);
  // Let the kernel forget the name, so that the next lookup must read /proc again.
  fs.writeFileSync('/proc/sys/vm/drop_caches', '2');
  t.true(await until(() => table.inode(ino)?.dentry === null, 5000), 'the kernel forgot the handle');
  // The client is started (its pipes open) before this process runs out of descriptors.
  const script = `read go; for p in ${s.pid} ${process.pid}; do stat -c %i "${mnt}/pid/$p" 2>&1; echo "rc=$?"; done`;
  const client = spawn('sh', ['-c', script], { stdio: ['pipe', 'pipe', 'ignore'] });
  t.teardown(() => {
    if (client.exitCode === null) client.kill('SIGKILL');
  });
  let out = '';
  client.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((r) => client.once('spawn', r));
  const taken: number[] = [];
  try {
    for (;;) {
      try {
        taken.push(fs.openSync('/dev/null', 'r'));
      } catch {
        break; // EMFILE
      }
    }
    client.stdin!.write('go\n');
    await until(() => (out.match(/rc=/g) ?? []).length === 2, 20_000);
  } finally {
    for (const fd of taken) fs.closeSync(fd);
  }
  await exited(client);
  // A known process and a first lookup alike: an error, not a death.
  t.is((out.match(/Input\/output error/g) ?? []).length, 2, out);
  t.false(table.isDead(table.inode(ino)!), 'the known handle is not marked dead');
  // With descriptors back, the same process keeps its number and reads as alive.
  t.is(await statIno(`${mnt}/pid/${s.pid}`), ino);
  const f = fields(await cat(`${mnt}/pid/${s.pid}`));
  t.is(f.Pid, String(s.pid));
  t.is(f.Ino, String(ino));
  t.is(fields(await cat(`${mnt}/pid/${process.pid}`)).Pid, String(process.pid));
});
