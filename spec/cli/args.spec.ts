import test from 'ava';
import { parseCommand, parseMountHelper, splitMountOptions } from '../../src/cli/args.js';
import { CliError, EXIT } from '../../src/cli/exit-codes.js';

const usageError = (t: import('ava').ExecutionContext, argv: string[], pattern: RegExp) => {
  const e = t.throws(() => parseCommand(argv), { instanceOf: CliError });
  t.is(e?.exitCode, EXIT.usage);
  t.regex(e!.message, pattern);
  t.regex(e!.hint ?? '', /--help/);
};

test('mount takes a mountpoint, --state, repeated -o, --daemon and --log-level', (t) => {
  t.deepEqual(parseCommand(['mount', '/mnt/h', '--state', '/tmp/s.db', '-o', 'allow_other', '-o', 'entry_timeout=5,ro', '--daemon', '--log-level', 'debug']), {
    name: 'mount',
    mountpoint: '/mnt/h',
    state: '/tmp/s.db',
    options: ['allow_other', 'entry_timeout=5', 'ro'],
    daemon: true,
    logLevel: 'debug',
  });
  t.deepEqual(parseCommand(['mount', 'x']), { name: 'mount', mountpoint: 'x', options: [], daemon: false });
});

test('state= and log_level= inside -o work like the flags; mount(8) generic options are dropped', (t) => {
  t.deepEqual(splitMountOptions(['rw,defaults,nofail,x-systemd.automount,state=/s.db,log_level=warn,allow_other,_netdev']), {
    fuse: ['allow_other'],
    state: '/s.db',
    logLevel: 'warn',
  });
  t.deepEqual(splitMountOptions(['rw,noexec,nosuid,noatime']).fuse, ['noexec', 'nosuid', 'noatime'], 'the kernel flags go to the FUSE layer, not dropped');
});

test('unknown flags, missing or extra arguments and bad levels are usage errors with a hint', (t) => {
  usageError(t, ['mount', '/m', '--bogus'], /Unknown option '--bogus'/);
  usageError(t, ['mount'], /missing the mountpoint/);
  usageError(t, ['mount', '/a', '/b'], /unexpected argument '\/b'/);
  usageError(t, ['mount', '/a', '--log-level', 'loud'], /unknown log level 'loud'/);
  usageError(t, ['status', '/a', '--verbose'], /Unknown option '--verbose'/);
  usageError(t, ['frobnicate'], /unknown command 'frobnicate'/);
  usageError(t, ['--frob'], /unknown option '--frob'/);
  usageError(t, [], /missing a command/);
  usageError(t, ['help', 'nope'], /unknown command 'nope'/);
});

test('help and version forms', (t) => {
  t.deepEqual(parseCommand(['--help']), { name: 'help' });
  t.deepEqual(parseCommand(['-V']), { name: 'version' });
  t.deepEqual(parseCommand(['help', 'status']), { name: 'help', topic: 'status' });
  t.deepEqual(parseCommand(['mount', '--help']), { name: 'help', topic: 'mount' });
  t.deepEqual(parseCommand(['umount', '-h']), { name: 'help', topic: 'umount' });
  t.deepEqual(parseCommand(['status', '/m', '--json']), { name: 'status', mountpoint: '/m', json: true });
  t.deepEqual(parseCommand(['unmount', '/m']), { name: 'umount', mountpoint: '/m', lazy: false });
  t.deepEqual(parseCommand(['umount', '--lazy', '/m']), { name: 'umount', mountpoint: '/m', lazy: true });
  t.deepEqual(parseCommand(['umount', '-l', '/m']), { name: 'umount', mountpoint: '/m', lazy: true });
  t.deepEqual(parseCommand(['restart', '/m']), { name: 'restart', mountpoint: '/m' });
  t.deepEqual(parseCommand(['reload', '/m']), { name: 'restart', mountpoint: '/m' });
  t.deepEqual(parseCommand(['help', 'restart']), { name: 'help', topic: 'restart' });
});

test('the mount(8) helper form becomes a daemonized mount with the source as fsname', (t) => {
  t.deepEqual(parseMountHelper(['handlefs', '/mnt/h', '-o', 'rw,allow_other,state=/var/s.db', '-n']), {
    name: 'mount',
    mountpoint: '/mnt/h',
    options: ['allow_other', 'fsname=handlefs'],
    daemon: true,
    state: '/var/s.db',
  });
  t.throws(() => parseMountHelper(['only-one']), { instanceOf: CliError, message: /expected SOURCE and MNT/ });
  t.throws(() => parseMountHelper(['a', 'b', '--weird']), { instanceOf: CliError, message: /unknown option '--weird'/ });
});
