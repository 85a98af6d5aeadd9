import test from 'ava';
import { DEFAULT_MOUNT_OPTIONS, MountOptionError, StaleMountError, kernelMountOptions, parseMountOptions, userMountOptions, type MountFlag } from '../../src/fuse/index.js';

test('defaults', (t) => {
  t.deepEqual(parseMountOptions(), { ...DEFAULT_MOUNT_OPTIONS });
  t.deepEqual(parseMountOptions(''), { ...DEFAULT_MOUNT_OPTIONS });
  t.is(DEFAULT_MOUNT_OPTIONS.ro, true);
  t.is(DEFAULT_MOUNT_OPTIONS.fsname, 'handlefs');
});

test('every option, as a -o string, a list and an object', (t) => {
  const want = {
    allowOther: true,
    defaultPermissions: true,
    entryTimeout: 0.5,
    attrTimeout: 2,
    fsname: 'myfs',
    subtype: 'sub_1',
    ro: true as const,
    debug: true,
    maxRead: 131072,
    flags: [] as MountFlag[],
  };
  t.deepEqual(parseMountOptions('allow_other,default_permissions,entry_timeout=0.5,attr_timeout=2,fsname=myfs,subtype=sub_1,ro,debug,max_read=131072'), want);
  t.deepEqual(parseMountOptions(['allow_other', 'default_permissions,entry_timeout=0.5', 'attr_timeout=2', 'fsname=myfs', 'subtype=sub_1', 'ro', 'debug', 'max_read=131072']), want);
  t.deepEqual(parseMountOptions({ ...want }), want);
  t.deepEqual(parseMountOptions(' entry_timeout=0 , attr_timeout=0 ,'), { ...DEFAULT_MOUNT_OPTIONS, entryTimeout: 0, attrTimeout: 0 });
});

test('unknown options are an error naming the option', (t) => {
  const e = t.throws(() => parseMountOptions('allow_other,nosuchthing=1'), { instanceOf: MountOptionError })!;
  t.is(e.option, 'nosuchthing');
  t.regex(e.message, /unknown mount option "nosuchthing"/);
  t.regex(e.message, /known: allow_other/);
  t.is(t.throws(() => parseMountOptions({ bogus: 1 } as never), { instanceOf: MountOptionError })!.option, 'bogus');
});

test('invalid values are rejected with the option named', (t) => {
  const cases: Array<[string, string]> = [
    ['allow_other=1', 'allow_other'],
    ['entry_timeout', 'entry_timeout'],
    ['entry_timeout=-1', 'entry_timeout'],
    ['attr_timeout=abc', 'attr_timeout'],
    ['attr_timeout=', 'attr_timeout'],
    ['entry_timeout=Infinity', 'entry_timeout'],
    ['max_read=100', 'max_read'],
    ['max_read=4096.5', 'max_read'],
    ['subtype=a.b', 'subtype'],
    ['subtype=', 'subtype'],
    ['fsname=', 'fsname'],
    ['debug=yes', 'debug'],
  ];
  for (const [spec, option] of cases) {
    const e = t.throws(() => parseMountOptions(spec), { instanceOf: MountOptionError }, spec);
    t.is(e?.option, option, spec);
  }
  t.throws(() => parseMountOptions({ fsname: 'a b' }), { instanceOf: MountOptionError });
  t.throws(() => parseMountOptions({ ro: false as unknown as true }), { instanceOf: MountOptionError, message: /always read-only/ });
});

test('kernel mount option string', (t) => {
  t.is(kernelMountOptions(parseMountOptions(), 3, 0, 0), 'fd=3,rootmode=40000,user_id=0,group_id=0,ro,nosuid,nodev');
  t.is(
    kernelMountOptions(parseMountOptions('allow_other,default_permissions,max_read=65536'), 3, 1000, 100),
    'fd=3,rootmode=40000,user_id=1000,group_id=100,allow_other,default_permissions,max_read=65536,ro,nosuid,nodev',
  );
});

test('fusermount3 option string: no fd, rootmode or ids (fusermount3 adds them); names as options', (t) => {
  t.is(userMountOptions(parseMountOptions()), 'fsname=handlefs,subtype=handlefs,ro,nosuid,nodev');
  t.is(
    userMountOptions(parseMountOptions('fsname=myfs,subtype=sub_1,allow_other,default_permissions,max_read=65536')),
    'fsname=myfs,subtype=sub_1,allow_other,default_permissions,max_read=65536,ro,nosuid,nodev',
  );
});

test('StaleMountError names ENOTCONN and the commands that fix it', (t) => {
  const e = new StaleMountError('/mnt/x y', 'fuse.handlefs');
  t.is(e.code, 'ENOTCONN');
  t.deepEqual(e.fix, ["umount -l '/mnt/x y'", "fusermount3 -u '/mnt/x y'"]);
  t.regex(e.message, /stale FUSE mount \(fuse\.handlefs\)/);
  t.regex(e.message, /ENOTCONN/);
});

test('generic mount flags: the kernel ones are passed on, their opposites undo them, suid/dev are refused', (t) => {
  const o = parseMountOptions('noexec,noatime,nodiratime,nosuid,nodev,ro');
  t.deepEqual(o.flags, ['noatime', 'nodiratime', 'noexec']);
  t.is(kernelMountOptions(o, 3, 0, 0), 'fd=3,rootmode=40000,user_id=0,group_id=0,ro,nosuid,nodev,noatime,nodiratime,noexec');
  t.is(userMountOptions(o), 'fsname=handlefs,subtype=handlefs,ro,nosuid,nodev,noatime,nodiratime,noexec');
  t.deepEqual(parseMountOptions('noexec,exec,sync,async,relatime').flags, ['relatime'], 'the later word wins, as in mount(8)');
  t.deepEqual(parseMountOptions({ flags: ['noexec', 'lazytime'] }).flags, ['lazytime', 'noexec']);
  for (const bad of ['suid', 'dev']) {
    const e = t.throws(() => parseMountOptions(`allow_other,${bad}`), { instanceOf: MountOptionError })!;
    t.is(e.option, bad);
    t.regex(e.message, new RegExp(`always mounts no${bad}`));
  }
  t.throws(() => parseMountOptions({ flags: ['bogus' as never] }), { instanceOf: MountOptionError });
});
