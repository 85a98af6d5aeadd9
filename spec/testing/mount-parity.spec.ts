/**
 * The kit against a real mount: one scripted scenario (processes starting, lookups in a fixed
 * order, a pid reuse, bad names, write attempts) run through the consumer kit and through a real
 * FUSE mount of a tree assembled by the same assembleContainer over the SAME FakeHost. Inode
 * numbers must agree in relative order and in equality across routes, errno values exactly.
 *
 * Every access to the mount comes from a child process (a synchronous fs call on the mount from
 * the serving process would deadlock it). Unmounted in every outcome (t.teardown, `umount -l` as
 * the last resort). Skipped, with a message, only where /dev/fuse is absent.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { MemoryStore } from '../../src/core/memory-store.js';
import { mountAt, parseMountOptions, type FuseSession } from '../../src/fuse/index.js';
import type { FuseServer } from '../../src/fuse/module.js';
import { FUSE_TOKENS } from '../../src/fuse/tokens.js';
import { assembleContainer } from '../../src/service/container.js';
import {
  createFakeSourcesModule,
  createTestFilesystem,
  FakeHost,
  FsError,
  ManualTimers,
  O_RDWR,
  type TestFilesystem,
} from '../../src/testing/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CLIENT = path.join(here, 'fixtures/mount-client.mjs');
const HAVE_FUSE = fs.existsSync('/dev/fuse');
const fuseTest = HAVE_FUSE ? test.serial : test.serial.skip;
if (!HAVE_FUSE) test.skip('kit vs real mount (skipped: /dev/fuse does not exist on this machine)', () => {});

type Outcome = { ok: unknown } | { code: string };
type Fields = Record<string, string>;

/** One way of reaching the filesystem: the kit, or system calls on the mount from a child. */
interface Route {
  stat(p: string): Promise<Outcome>;
  read(p: string): Promise<Outcome>;
  open(p: string, fd: number): Promise<Outcome>;
  readFd(fd: number): Promise<Outcome>;
  close(fd: number): Promise<Outcome>;
  ls(p: string): Promise<Outcome>;
  writeFile(p: string): Promise<Outcome>;
  openWrite(p: string): Promise<Outcome>;
  mkdir(p: string): Promise<Outcome>;
  unlink(p: string): Promise<Outcome>;
  truncate(p: string): Promise<Outcome>;
}

async function outcome(f: () => Promise<unknown>): Promise<Outcome> {
  try {
    const v = await f();
    return { ok: v === undefined ? true : v };
  } catch (e) {
    if (e instanceof FsError) return { code: e.code };
    throw e;
  }
}

function dirname(p: string): { parent: string; name: string } {
  const i = p.lastIndexOf('/');
  return i < 0 ? { parent: '', name: p } : { parent: p.slice(0, i), name: p.slice(i + 1) };
}

function kitRoute(kit: TestFilesystem): Route {
  const held = new Map<number, { node: number; fh: number }>();
  const onParent = (p: string, f: (parent: number, name: string) => Promise<unknown>) =>
    outcome(async () => {
      const { parent, name } = dirname(p);
      const e = await kit.lookupPath(parent);
      try {
        return await f(e.nodeId, name);
      } finally {
        kit.forget(e.nodeId);
      }
    });
  const onNode = (p: string, f: (node: number) => Promise<unknown>) =>
    outcome(async () => {
      const e = await kit.lookupPath(p);
      try {
        return await f(e.nodeId);
      } finally {
        kit.forget(e.nodeId);
      }
    });
  return {
    stat: (p) => outcome(() => kit.ino(p)),
    read: (p) => outcome(() => kit.readFields(p)),
    open: (p, fd) =>
      outcome(async () => {
        const e = await kit.lookupPath(p);
        try {
          held.set(fd, { node: e.nodeId, fh: (await kit.open(e.nodeId)).fh });
        } catch (err) {
          kit.forget(e.nodeId);
          throw err;
        }
      }),
    readFd: (fd) =>
      outcome(async () => {
        const chunks: Buffer[] = [];
        for (let off = 0; ; ) {
          const b = await kit.read(held.get(fd)!.fh, off);
          if (b.length === 0) break;
          chunks.push(Buffer.from(b));
          off += b.length;
        }
        const out: Fields = {};
        for (const line of Buffer.concat(chunks).toString('utf8').split('\n')) {
          const i = line.indexOf(':\t');
          if (i >= 0) out[line.slice(0, i)] = line.slice(i + 2);
        }
        return out;
      }),
    close: (fd) =>
      outcome(async () => {
        const h = held.get(fd)!;
        held.delete(fd);
        await kit.release(h.fh);
        kit.forget(h.node);
      }),
    ls: (p) => outcome(async () => (await kit.list(p)).map((e) => [e.name, e.ino])),
    writeFile: (p) => outcome(() => kit.writeFile(p, 'x')),
    openWrite: (p) => onNode(p, (node) => kit.open(node, O_RDWR)),
    mkdir: (p) => onParent(p, (parent, name) => kit.mkdir(parent, name)),
    unlink: (p) => onParent(p, (parent, name) => kit.unlink(parent, name)),
    truncate: (p) => onNode(p, (node) => kit.setattr(node, { size: 0 })),
  };
}

/** A long-lived child process doing the system calls on the mount. */
function mountRoute(t: ExecutionContext, mnt: string): Route {
  const child: ChildProcess = spawn(process.execPath, [CLIENT, mnt], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const pending = new Map<number, (o: Outcome) => void>();
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    const r = JSON.parse(line) as { id: number; ok?: unknown; code?: string };
    const done = pending.get(r.id);
    pending.delete(r.id);
    done?.(r.code !== undefined ? { code: r.code } : { ok: r.ok });
  });
  let id = 0;
  const ask = (op: string, args: Record<string, unknown>): Promise<Outcome> =>
    new Promise((resolve, reject) => {
      const n = ++id;
      const timer = setTimeout(() => reject(new Error(`the mount did not answer ${op} ${JSON.stringify(args)} within 20 s`)), 20_000);
      pending.set(n, (o) => {
        clearTimeout(timer);
        resolve(o);
      });
      child.stdin!.write(`${JSON.stringify({ id: n, op, ...args })}\n`);
    });
  return {
    stat: (p) => ask('stat', { path: p }),
    read: (p) => ask('read', { path: p }),
    open: (p, fd) => ask('open', { path: p, fd }),
    readFd: (fd) => ask('readFd', { fd }),
    close: (fd) => ask('close', { fd }),
    ls: (p) => ask('ls', { path: p }),
    writeFile: (p) => ask('writeFile', { path: p }),
    openWrite: (p) => ask('openWrite', { path: p }),
    mkdir: (p) => ask('mkdir', { path: p }),
    unlink: (p) => ask('unlink', { path: p }),
    truncate: (p) => ask('truncate', { path: p }),
  };
}

/** Mounts a tree assembled like the service's, over `host`, with entry/attr timeouts 0 (no kernel caching to race with). */
async function mountTree(t: ExecutionContext, host: FakeHost): Promise<string> {
  const mnt = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'handlefs-parity-')));
  const logger = pino({ level: 'error' });
  const container = assembleContainer({
    logger,
    store: { instance: new MemoryStore() },
    sources: createFakeSourcesModule(host),
    timers: new ManualTimers(host.clock),
  });
  container.bind(FUSE_TOKENS.MountOptions).toConstantValue(parseMountOptions({ entryTimeout: 0, attrTimeout: 0 }));
  let session: FuseSession | undefined;
  t.teardown(async () => {
    await session?.stop('teardown').catch(() => undefined);
    if (mountAt(mnt)) spawnSync('umount', ['-i', '-c', '-l', mnt], { stdio: 'ignore' });
    container.unbindAll();
    fs.rmSync(mnt, { recursive: true, force: true });
  });
  session = await container.get<FuseServer>(FUSE_TOKENS.Server).start(mnt, { handleSignals: false });
  return mnt;
}

interface Step {
  label: string;
  /** Host changes made once, before both routes run the step. */
  before?: () => void;
  run: (r: Route, memo: Map<string, number>) => Promise<Outcome>;
  /** Remember the inode number this step gave (stat), under this name. */
  remember?: string;
}

const BAD_NAMES = ['pid/0', 'pid/01', 'pid/+1', 'pid/abc', 'pid/4194305', 'ns/bogus', 'ns/net/1', 'ns/net/04026531992', 'by-ino/5', 'by-ino/1023', 'nope', `pid/${'1'.repeat(256)}`];

function script(host: FakeHost): { steps: Step[]; pids: Record<string, number> } {
  const a = host.start({ comm: 'alpha' });
  const b = host.start({ comm: 'beta' });
  const c = host.start({ comm: 'gamma' });
  const pids = { a: a.pid, b: b.pid, c: c.pid };
  const net = host.initialNamespace('net');
  const steps: Step[] = [
    { label: 'stat pid/B', run: (r) => r.stat(`pid/${b.pid}`), remember: 'B' },
    { label: 'stat pid/A', run: (r) => r.stat(`pid/${a.pid}`), remember: 'A' },
    { label: 'read pid/A', run: (r) => r.read(`pid/${a.pid}`) },
    { label: 'stat by-ino/A', run: (r, m) => r.stat(`by-ino/${m.get('A')}`) },
    { label: 'stat ns/net/<initial>', run: (r) => r.stat(`ns/net/${net}`) },
    { label: 'open pid/A', run: (r) => r.open(`pid/${a.pid}`, 1) },
    { label: 'ls pid', run: (r) => r.ls('pid') },
    {
      label: 'stat pid/A after reuse',
      before: () => {
        host.clock.advance(1000);
        host.reusePid(a.pid, { comm: 'alpha2' });
      },
      run: (r) => r.stat(`pid/${a.pid}`),
      remember: 'A2',
    },
    { label: 'stat by-ino/<old A>', run: (r, m) => r.stat(`by-ino/${m.get('A')}`) },
    { label: 'read the descriptor opened before the reuse', run: (r) => r.readFd(1) },
    { label: 'close it', run: (r) => r.close(1) },
    { label: 'read pid/A (new)', run: (r) => r.read(`pid/${a.pid}`) },
    { label: 'stat by-ino/<new A>', run: (r, m) => r.stat(`by-ino/${m.get('A2')}`) },
    { label: 'ls pid after the reuse', run: (r) => r.ls('pid') },
    ...BAD_NAMES.map((p): Step => ({ label: `stat ${p.length > 40 ? 'pid/<256 digits>' : p}`, run: (r) => r.stat(p) })),
    { label: 'stat pid/B/x', run: (r) => r.stat(`pid/${b.pid}/x`) },
    { label: 'stat pid/B/', run: (r) => r.stat(`pid/${b.pid}/`) },
    { label: 'stat pid/C after exit', before: () => host.exit(c.pid), run: (r) => r.stat(`pid/${c.pid}`) },
    { label: 'read pid (a directory)', run: (r) => r.read('pid') },
    { label: 'writeFile pid/B', run: (r) => r.writeFile(`pid/${b.pid}`) },
    { label: 'writeFile pid/new', run: (r) => r.writeFile('pid/12345') },
    { label: 'writeFile pid', run: (r) => r.writeFile('pid') },
    { label: 'writeFile nope/x', run: (r) => r.writeFile('nope/x') },
    { label: 'writeFile pid/B/', run: (r) => r.writeFile(`pid/${b.pid}/`) },
    { label: 'writeFile pid/new/', run: (r) => r.writeFile('pid/12345/') },
    { label: 'open pid/B r+', run: (r) => r.openWrite(`pid/${b.pid}`) },
    { label: 'mkdir pid/newdir', run: (r) => r.mkdir('pid/newdir') },
    { label: 'unlink pid/B', run: (r) => r.unlink(`pid/${b.pid}`) },
    { label: 'truncate pid/B', run: (r) => r.truncate(`pid/${b.pid}`) },
    { label: 'stat pid/B at the end', run: (r) => r.stat(`pid/${b.pid}`) },
  ];
  return { steps, pids };
}

const INO_FIELDS = ['Ino', 'Ns.cgroup', 'Ns.ipc', 'Ns.mnt', 'Ns.net', 'Ns.pid', 'Ns.time', 'Ns.user', 'Ns.uts'];

/** Every inode number an outcome shows, in order. */
function inosOf(o: Outcome): number[] {
  if (!('ok' in o)) return [];
  const v = o.ok;
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return v.map((e) => (e as [string, number])[1]);
  if (v !== null && typeof v === 'object') {
    const f = v as Fields;
    return INO_FIELDS.filter((k) => /^\d+$/.test(f[k] ?? '')).map((k) => Number(f[k]));
  }
  return [];
}

/** The outcome with every inode number replaced by its rank among the route's numbers; handle text reduced to what both must agree on. */
function normalize(o: Outcome, rank: (n: number) => string): unknown {
  if (!('ok' in o)) return o;
  const v = o.ok;
  if (typeof v === 'number') return { ok: rank(v) };
  if (Array.isArray(v)) return { ok: v.map((e) => [(e as [string, number])[0], rank((e as [string, number])[1])]) };
  if (v !== null && typeof v === 'object') {
    const f = v as Fields;
    const out: Record<string, string | undefined> = { Pid: f.Pid, PPid: f.PPid, Comm: f.Comm, State: f.State, StartTime: f.StartTime, Generation: f.Generation };
    for (const k of INO_FIELDS) out[k] = /^\d+$/.test(f[k] ?? '') ? rank(Number(f[k])) : f[k];
    return { ok: out };
  }
  return o;
}

fuseTest('the kit and a real mount agree: inode order and equality across routes, errno values', async (t) => {
  t.timeout(120_000);
  const host = new FakeHost();
  const kit = createTestFilesystem({ host });
  t.teardown(() => kit.close());
  const mnt = await mountTree(t, host);
  const routes = { kit: kitRoute(kit), mount: mountRoute(t, mnt) };
  const { steps, pids } = script(host);
  const memo = { kit: new Map<string, number>(), mount: new Map<string, number>() };
  const results = { kit: [] as Outcome[], mount: [] as Outcome[] };

  for (const step of steps) {
    step.before?.();
    for (const name of ['kit', 'mount'] as const) {
      const o = await step.run(routes[name], memo[name]);
      results[name].push(o);
      if (step.remember !== undefined && 'ok' in o && typeof o.ok === 'number') memo[name].set(step.remember, o.ok);
    }
  }

  const ranked = (name: 'kit' | 'mount') => {
    const all = [...new Set(results[name].flatMap(inosOf))].sort((x, y) => x - y);
    const rank = (n: number) => `#${all.indexOf(n)}`;
    return results[name].map((o, i) => ({ step: steps[i]!.label, outcome: normalize(o, rank) }));
  };
  const kitView = ranked('kit');
  const mountView = ranked('mount');
  for (let i = 0; i < steps.length; i++) {
    t.deepEqual(kitView[i], mountView[i], `step ${i}: ${steps[i]!.label}`);
  }
  const same = JSON.stringify(results.kit) === JSON.stringify(results.mount);
  if (process.env.PARITY_DEBUG) t.log(JSON.stringify(results.mount));
  t.log(same ? 'absolute inode numbers agree too' : 'absolute inode numbers differ (relative order and equality agree)');

  // And what the scenario is about, as the kit saw it (so agreement is agreement on the right thing).
  const byLabel = (label: string): Outcome => results.kit[steps.findIndex((s) => s.label === label)]!;
  const ok = (label: string) => (byLabel(label) as { ok: unknown }).ok;
  t.is(ok('stat by-ino/A'), memo.kit.get('A'));
  t.true(memo.kit.get('A2')! > memo.kit.get('A')!, 'pid reuse: a new, larger number');
  t.deepEqual(byLabel('stat by-ino/<old A>'), { code: 'ENOENT' });
  const dead = ok('read the descriptor opened before the reuse') as Fields;
  t.is(dead.Pid, '-1');
  t.is(dead.State, 'dead');
  t.is(dead.Comm, 'alpha');
  t.is((ok('read pid/A (new)') as Fields).Comm, 'alpha2');
  t.is((ok('read pid/A') as Fields)['Ns.net'], String(ok('stat ns/net/<initial>')));
  t.deepEqual(
    (ok('ls pid after the reuse') as Array<[string, number]>).map(([n]) => Number(n)),
    [1, pids.a, pids.b, pids.c].sort((x, y) => x - y),
  );
  for (const p of BAD_NAMES) {
    const o = results.kit[steps.findIndex((s) => s.label.endsWith(p) || (p.length > 40 && s.label === 'stat pid/<256 digits>'))]!;
    t.deepEqual(o, { code: p.length > 255 ? 'ENAMETOOLONG' : 'ENOENT' }, p.slice(0, 40));
  }
  t.deepEqual(byLabel('stat pid/B/x'), { code: 'ENOTDIR' });
  t.deepEqual(byLabel('stat pid/B/'), { code: 'ENOTDIR' });
  t.deepEqual(byLabel('stat pid/C after exit'), { code: 'ENOENT' });
  t.deepEqual(byLabel('read pid (a directory)'), { code: 'EISDIR' });
  for (const label of ['writeFile pid/B', 'writeFile pid/new', 'open pid/B r+', 'mkdir pid/newdir', 'unlink pid/B', 'truncate pid/B']) {
    t.deepEqual(byLabel(label), { code: 'EROFS' }, label);
  }
  t.deepEqual(byLabel('writeFile pid'), { code: 'EISDIR' });
  t.deepEqual(byLabel('writeFile nope/x'), { code: 'ENOENT' });
  t.is(ok('stat pid/B at the end'), memo.kit.get('B'), 'nothing a write attempt did changed B');
});
