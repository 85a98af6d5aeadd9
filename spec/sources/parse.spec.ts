import test from 'ava';
import {
  classifyProcError,
  parseBootId,
  parseCgroup,
  parseMachineId,
  parseMountinfoNsfs,
  parseNsLink,
  parseStat,
  parseStatus,
  primaryCgroupPath,
} from '../../src/sources/parse.js';

const TAIL =
  '3479 0 -1 4194304 98 0 0 0 0 0 0 0 20 0 1 0 74892 3133440 382 18446744073709551615 94471939842048 ' +
  '94471939861929 140722184540656 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 94471939877936 94471939879552 ' +
  '94472943562752 140722184547040 140722184547060 140722184547060 140722184548331 0\n';
const stat = (pid: number, comm: string, state: string, ppid: number) =>
  `${pid} (${comm}) ${state} ${ppid} 6686 ${TAIL}`;

test('stat: plain line from a live process', (t) => {
  t.deepEqual(parseStat(stat(6688, 'cat', 'R', 6686)), {
    pid: 6688,
    comm: 'cat',
    state: 'R',
    ppid: 6686,
    startTime: 74892,
  });
});

test('stat: comm with spaces and parentheses takes the LAST )', (t) => {
  const s = parseStat(stat(42, 'a) b (c) Z 1 2', 'S', 7));
  t.is(s?.comm, 'a) b (c) Z 1 2');
  t.is(s?.state, 'S');
  t.is(s?.ppid, 7);
  t.is(s?.startTime, 74892);
  t.is(parseStat(stat(43, ')', 'R', 1))?.comm, ')');
  t.is(parseStat(stat(44, '', 'R', 1))?.comm, '');
  t.is(parseStat(stat(45, 'new\nline', 'R', 1))?.comm, 'new\nline');
});

test('stat: zombie state and pid 1 with ppid 0', (t) => {
  t.is(parseStat(stat(99, 'defunct thing', 'Z', 1))?.state, 'Z');
  t.is(parseStat(stat(1, 'systemd', 'S', 0))?.ppid, 0);
});

test('stat: malformed or truncated lines give null', (t) => {
  t.is(parseStat(''), null);
  t.is(parseStat('12 cat R 1'), null);
  t.is(parseStat('12 (cat) R 1 2 3'), null); // no field 22
  t.is(parseStat('x (cat) R 1 ' + TAIL), null);
  t.is(parseStat('12 (cat'), null);
});

const STATUS = `Name:\tcat
Umask:\t0022
State:\tR (running)
Tgid:\t6689
Ngid:\t0
Pid:\t6689
PPid:\t6686
TracerPid:\t0
Uid:\t1000\t1001\t1002\t1003
Gid:\t100\t101\t102\t103
FDSize:\t256
Groups:\t
`;

test('status: Tgid, Uid, Gid', (t) => {
  t.deepEqual(parseStatus(STATUS), {
    tgid: 6689,
    uid: { real: 1000, effective: 1001, saved: 1002, fs: 1003 },
    gid: { real: 100, effective: 101, saved: 102, fs: 103 },
  });
});

test('status: missing or short lines give null fields', (t) => {
  t.deepEqual(parseStatus('Name:\tx\nUid:\t1 2\n'), { tgid: null, uid: null, gid: null });
  t.deepEqual(parseStatus(''), { tgid: null, uid: null, gid: null });
});

test('cgroup: v2 only', (t) => {
  const e = parseCgroup('0::/user.slice/user-1000.slice/session-2.scope\n');
  t.deepEqual(e, [{ hierarchyId: 0, controllers: [], path: '/user.slice/user-1000.slice/session-2.scope' }]);
  t.is(primaryCgroupPath(e), '/user.slice/user-1000.slice/session-2.scope');
});

test('cgroup: hybrid v1 + v2 prefers the unified line', (t) => {
  const text = '9:name=systemd:/\n4:memory:/process_api/daa8\n2:cpu,cpuacct:/x\n0::/\n';
  const e = parseCgroup(text);
  t.is(e.length, 4);
  t.deepEqual(e[2], { hierarchyId: 2, controllers: ['cpu', 'cpuacct'], path: '/x' });
  t.is(primaryCgroupPath(e), '/');
});

test('cgroup: v1 only uses name=systemd, else the first; paths may hold colons', (t) => {
  t.is(primaryCgroupPath(parseCgroup('4:memory:/docker/a:b\n1:name=systemd:/docker/abc\n')), '/docker/abc');
  t.is(primaryCgroupPath(parseCgroup('4:memory:/docker/a:b\n')), '/docker/a:b');
  t.is(primaryCgroupPath(parseCgroup('garbage\n\n')), null);
});

test('ns link targets', (t) => {
  t.deepEqual(parseNsLink('net:[4026531840]'), { type: 'net', inum: 4026531840 });
  t.deepEqual(parseNsLink('mnt:[4026531832]\n'), { type: 'mnt', inum: 4026531832 });
  t.is(parseNsLink('pid_for_children:[1]'), null);
  t.is(parseNsLink('foo:[1]'), null);
  t.is(parseNsLink('net:4026531840'), null);
  t.is(parseNsLink('anon_inode:[pidfd]'), null);
});

test('mountinfo: nsfs bind mounts, escaped mount points', (t) => {
  const text =
    '27 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n' +
    '42 27 0:4 net:[4026532177] /run/netns/blue rw shared:5 - nsfs nsfs rw\n' +
    '43 27 0:4 uts:[4026531838] /tmp/a\\040b rw - nsfs nsfs rw\n' +
    '44 27 0:4 / /proc rw - proc proc rw\n';
  t.deepEqual(parseMountinfoNsfs(text), [
    { type: 'net', inum: 4026532177, mountPoint: '/run/netns/blue' },
    { type: 'uts', inum: 4026531838, mountPoint: '/tmp/a b' },
  ]);
});

test('host ids', (t) => {
  t.is(parseMachineId('3D1219C7C4C5404AAA1F6D2A48ADFDA4\n'), '3d1219c7c4c5404aaa1f6d2a48adfda4');
  t.is(parseMachineId('uninitialized\n'), null);
  t.is(parseMachineId(''), null);
  t.is(parseMachineId('0'.repeat(32)), null);
  t.is(parseBootId('08dac47c-1543-4061-8df0-702671b83dab\n'), '08dac47c-1543-4061-8df0-702671b83dab');
  t.is(parseBootId('nope'), null);
});

test('error classes', (t) => {
  const e = (code: string) => Object.assign(new Error(code), { code });
  t.is(classifyProcError(e('ENOENT')), 'gone');
  t.is(classifyProcError(e('ESRCH')), 'gone');
  t.is(classifyProcError(e('EACCES')), 'denied');
  t.is(classifyProcError(e('EIO')), 'other');
  t.is(classifyProcError('x'), 'other');
});
