/**
 * allow_other for real: the handle tree over the real /proc sources, read as uid 65534 through
 * `setpriv`. What nobody sees or holds through the mount must never be more than /proc gives it:
 * each check is compared with what the kernel answers the same user for /proc.
 *
 * Every access to the mount comes from a child process (a synchronous call from the serving
 * process would deadlock it). Every test unmounts in every outcome. Skipped, with a message, where /dev/fuse, setpriv or
 * unshare is absent, or when not running as root (allow_other and other users need it).
 */
import test, { type ExecutionContext } from 'ava';
import { execFile, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { mountAt, serve, type MountOptions } from '../../src/fuse/mount.js';
import type { HandleTreeOptions } from '../../src/tree/handle-fs.js';
import { fields } from './harness.js';
import { assembleRealTree } from '../helpers/real-tree.js';

const execFileP = promisify(execFile);
const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const missing = [
  ...(fs.existsSync('/dev/fuse') ? [] : ['/dev/fuse']),
  ...(have('setpriv') ? [] : ['setpriv']),
  ...(have('unshare') ? [] : ['unshare']),
  ...(process.getuid?.() === 0 ? [] : ['root']),
];
const fuseTest = missing.length === 0 ? test.serial : test.serial.skip;
if (missing.length > 0) test.skip(`allow_other real-mount tests (skipped: no ${missing.join(', ')})`, () => {});

const NOBODY = 65534;
const AS_NOBODY = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];

/** Runs a shell script as nobody: its stdout, stderr and exit code. */
async function asNobody(script: string): Promise<{ out: string; err: string; code: number }> {
  try {
    const { stdout, stderr } = await execFileP(AS_NOBODY[0]!, [...AS_NOBODY.slice(1), 'sh', '-c', script], { timeout: 30_000 });
    return { out: stdout, err: stderr, code: 0 };
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; code?: number };
    return { out: x.stdout ?? '', err: x.stderr ?? '', code: typeof x.code === 'number' ? x.code : -1 };
  }
}

async function mountTree(t: ExecutionContext, options: HandleTreeOptions = {}, mount: Partial<MountOptions> = {}) {
  const mnt = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'handlefs-access-')));
  fs.chmodSync(mnt, 0o755);
  const logger = pino({ level: 'warn' });
  const { tree, unbind } = assembleRealTree(logger, options);
  const session = await serve(tree, mnt, { entryTimeout: 3600, attrTimeout: 3600, allowOther: true, ...mount }, logger, { handleSignals: false });
  t.teardown(async () => {
    await session.stop('teardown').catch(() => undefined);
    if (mountAt(mnt)) spawnSync('umount', ['-i', '-c', '-l', mnt], { stdio: 'ignore' });
    unbind();
    fs.rmSync(mnt, { recursive: true, force: true });
  });
  return { mnt, tree };
}

/** A root process in a network namespace of its own (`unshare -n sleep`), and that namespace's nsfs number. */
async function rootNetns(t: ExecutionContext): Promise<{ pid: number; inum: number }> {
  const c = spawn('unshare', ['-n', 'sleep', '300'], { stdio: 'ignore' });
  t.teardown(() => {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  const ours = fs.readlinkSync('/proc/self/ns/net');
  for (let i = 0; i < 100; i++) {
    try {
      const link = fs.readlinkSync(`/proc/${c.pid}/ns/net`);
      if (link !== ours) return { pid: c.pid!, inum: Number(/\[(\d+)\]/.exec(link)![1]) };
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('unshare -n did not enter a new network namespace');
}

fuseTest("allow_other: nobody cannot open root's namespace handle nor read root's Ns lines, as /proc refuses it; its own are visible", async (t) => {
  t.timeout(60_000);
  const { mnt } = await mountTree(t);
  const { pid, inum } = await rootNetns(t);
  // What the kernel lets nobody do in /proc: the reference.
  const proc = await asNobody(`readlink /proc/${pid}/ns/net`);
  t.not(proc.code, 0, 'nobody cannot readlink a root process ns link');
  const hold = await asNobody(`exec 3< ${mnt}/ns/net/${inum} && echo held`);
  t.not(hold.code, 0);
  t.regex(hold.err, /Permission denied/, 'exec 3< MNT/ns/net/N is EACCES');
  const f = fields((await asNobody(`cat ${mnt}/pid/${pid}`)).out);
  t.is(f.Comm, 'sleep', 'the fields /proc/PID/status shows everyone');
  t.is(f['Ns.net'], 'hidden');
  t.is(f['Ns.mnt'], 'hidden');
  // Its own process: the shell reads its own handle and may open its own namespace.
  const own = await asNobody(`cat ${mnt}/pid/$$; readlink /proc/$$/ns/net`);
  const of = fields(own.out);
  t.regex(of['Ns.net'] ?? '', /^\d+$/, own.err);
  const myNet = Number(/net:\[(\d+)\]/.exec(own.out)![1]);
  const mine = await asNobody(`exec 3< ${mnt}/ns/net/${myNet} && cat <&3`);
  t.is(mine.code, 0, mine.err);
  t.is(fields(mine.out).NsId, String(myNet));
  // Root reads everything.
  t.regex(fields((await execFileP('cat', [path.join(mnt, 'pid', String(pid))])).stdout)['Ns.net'] ?? '', /^\d+$/);
});

fuseTest('allow_other,hidepid=invisible: nobody lists and resolves only its own processes, even names root has cached', async (t) => {
  t.timeout(60_000);
  const { mnt } = await mountTree(t, { hidepid: 'invisible' });
  const { pid } = await rootNetns(t);
  // Root caches the names (from a child: a synchronous call on the mount from this process would deadlock it).
  await execFileP('stat', [path.join(mnt, 'pid', String(pid)), path.join(mnt, 'pid', '1')]);
  const r = await asNobody(`echo $$; ls ${mnt}/pid; stat -c %i ${mnt}/pid/${pid} 2>&1; stat -c %i ${mnt}/pid/1 2>&1; true`);
  const [self, ...rest] = r.out.trim().split('\n');
  const listed = rest.filter((l) => /^\d+$/.test(l) && l.length < 8).map(Number);
  t.true(listed.includes(Number(self)), `its own shell is listed: ${r.out}`);
  t.false(listed.includes(pid), "root's process is not listed");
  t.false(listed.includes(1));
  t.is((r.out.match(/No such file or directory/g) ?? []).length, 2, `stat of root's cached names is ENOENT for nobody: ${r.out}`);
  t.true((await execFileP('ls', [path.join(mnt, 'pid')])).stdout.split('\n').includes(String(pid)), 'root sees all');
});
