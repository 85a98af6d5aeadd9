/**
 * The kit models what handles do (issue 11): poll readiness at the exit, how a process ended,
 * kill and wait through the exact process, who may — on the fake host, without root.
 */
import test, { type ExecutionContext } from 'ava';
import { ActionError, createTestFilesystem, POLLIN, type TestFilesystem } from '../../src/testing/index.js';

function kit(t: ExecutionContext): TestFilesystem {
  const fs = createTestFilesystem();
  t.teardown(() => fs.close());
  return fs;
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ActionError) return e.code;
    throw e;
  }
  return 'resolved';
}

test('poll: not ready while the process runs, POLLIN and a wake-up of the poll handle at the exit (a zombie counts)', async (t) => {
  const fs = kit(t);
  const p = fs.host.start({ comm: 'sleeper' });
  const e = await fs.lookupPath(`pid/${p.pid}`);
  const f = await fs.open(e.nodeId);
  t.is(await fs.poll(f.fh), 0);
  fs.takeInvalidations();
  fs.host.exit(p.pid, { zombie: true, code: 42 });
  await fs.settle();
  t.deepEqual(
    fs.takeInvalidations().filter((i) => i.op === 'pollWakeup'),
    [{ op: 'pollWakeup', kh: f.fh }],
  );
  t.is(await fs.poll(f.fh) & POLLIN, POLLIN);
  const fields = await fs.readFields(e.nodeId);
  t.is(fields.State, 'dead');
  t.is(fields.ExitCode, '42');
  t.is(fields.PidfsIno, String(p.pidfsIno));
  await fs.release(f.fh);
});

test('how it ended: ExitCode, ExitSignal; the live handle has neither', async (t) => {
  const fs = kit(t);
  const a = fs.host.start();
  const b = fs.host.start();
  const ea = await fs.lookupPath(`pid/${a.pid}`);
  const eb = await fs.lookupPath(`pid/${b.pid}`);
  const live = await fs.readFields(ea.nodeId);
  t.false('ExitCode' in live || 'ExitSignal' in live);
  fs.host.exit(a.pid, { code: 3 });
  fs.host.exit(b.pid, { signal: 9 });
  await fs.settle();
  t.is((await fs.readFields(ea.nodeId)).ExitCode, '3');
  const fb = await fs.readFields(eb.nodeId);
  t.is(fb.ExitSignal, '9');
  t.false('ExitCode' in fb);
});

test('kill reaches exactly the handle\'s process; after a pid reuse it is ESRCH and the new process lives', async (t) => {
  const fs = kit(t);
  const p = fs.host.start({ catches: [10] });
  const e = await fs.lookupPath(`pid/${p.pid}`);
  await fs.kill(e.nodeId, 10);
  t.deepEqual(fs.host.signalsOf(p.pid), [10]);
  const waiting = fs.wait(e.nodeId);
  await fs.kill(e.nodeId, 15);
  t.deepEqual(await waiting, { state: 'killed', signal: 15 });
  const reused = fs.host.reusePid(p.pid);
  t.is(await refusal(fs.kill(e.nodeId, 9)), 'ESRCH');
  t.not(fs.host.process(p.pid), null);
  t.deepEqual(fs.host.signalsOf(reused.pid), []);
});

test('who may: kill(2)\'s rule on real and saved uids; namespaces are not processes', async (t) => {
  const fs = kit(t);
  const own = fs.host.start({ uid: 1000 });
  const root = fs.host.start({ uid: 0 });
  const eo = await fs.lookupPath(`pid/${own.pid}`);
  const er = await fs.lookupPath(`pid/${root.pid}`);
  t.is(await refusal(fs.kill(er.nodeId, 15, { uid: 1000, ruid: 1000 })), 'EPERM');
  t.is(await refusal(fs.wait(er.nodeId, { uid: 1000, ruid: 1000 })), 'EPERM');
  t.not(fs.host.process(root.pid), null);
  await fs.kill(eo.nodeId, 15, { uid: 1000, ruid: 1000 });
  t.is(fs.host.process(own.pid), null);
  t.deepEqual(await fs.wait(eo.nodeId, { uid: 1000, ruid: 1000 }), { state: 'killed', signal: 15 });
  const ns = await fs.lookupPath(`ns/net/${fs.host.initialNamespace('net')}`);
  t.is(await refusal(fs.kill(ns.nodeId, 15)), 'EINVAL');
});
