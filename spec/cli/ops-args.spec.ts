/** The operator-facing additions to the command line: ls, -f, --prometheus, the list of -o options. */
import test from 'ava';
import { knownMountOptions, parseCommand, parseMountHelper } from '../../src/cli/args.js';
import { CliError, EXIT } from '../../src/cli/exit-codes.js';

test('ls takes an optional mountpoint and --json', (t) => {
  t.deepEqual(parseCommand(['ls']), { name: 'ls', json: false });
  t.deepEqual(parseCommand(['ls', '/run/handles', '--json']), { name: 'ls', mountpoint: '/run/handles', json: true });
  t.deepEqual(parseCommand(['ls', '--help']), { name: 'help', topic: 'ls' });
  t.deepEqual(parseCommand(['help', 'ls']), { name: 'help', topic: 'ls' });
  const e = t.throws(() => parseCommand(['ls', '/a', '/b']), { instanceOf: CliError });
  t.is(e?.exitCode, EXIT.usage);
});

test('mount -f (foreground, as sshfs spells it) is accepted; with --daemon it is a contradiction', (t) => {
  t.deepEqual(parseCommand(['mount', '/m', '-f']), { name: 'mount', mountpoint: '/m', options: [], daemon: false });
  t.deepEqual(parseCommand(['mount', '-f', '/m', '--foreground']), { name: 'mount', mountpoint: '/m', options: [], daemon: false });
  const e = t.throws(() => parseCommand(['mount', '/m', '-f', '--daemon']), { instanceOf: CliError });
  t.is(e?.exitCode, EXIT.usage);
  t.regex(e!.message, /contradict/);
});

test('status --prometheus; with --json it is a usage error', (t) => {
  t.deepEqual(parseCommand(['status', '/m', '--prometheus']), { name: 'status', mountpoint: '/m', json: false, prometheus: true });
  t.deepEqual(parseCommand(['status', '/m']), { name: 'status', mountpoint: '/m', json: false });
  t.is(t.throws(() => parseCommand(['status', '/m', '--prometheus', '--json']), { instanceOf: CliError })?.exitCode, EXIT.usage);
});

test('an unknown -o option is exit 13 and its error lists every option there is, state and log_level included', (t) => {
  for (const parse of [() => parseCommand(['mount', '/m', '-o', 'allow_other,colour=blue']), () => parseMountHelper(['handlefs', '/m', '-o', 'colour=blue'])]) {
    const e = t.throws(parse, { instanceOf: CliError });
    t.is(e?.exitCode, EXIT.badMountOption);
    t.regex(e!.message, /^unknown mount option "colour" \(known: /);
    for (const name of ['allow_other', 'default_permissions', 'ro', 'debug', 'entry_timeout=', 'attr_timeout=', 'fsname=', 'subtype=', 'max_read=', 'state=FILE', 'log_level=LEVEL']) {
      t.true(e!.message.includes(name), `${name} is listed`);
    }
  }
  t.regex(knownMountOptions(), /generic/);
  // Known options still parse; their values are checked by the service as before.
  t.deepEqual(parseCommand(['mount', '/m', '-o', 'max_read=8192,fsname=h,state=/s.db']).name, 'mount');
  // The kernel's mount flags and the tree's hidepid= are options too (the service judges their values).
  t.deepEqual((parseCommand(['mount', '/m', '-o', 'noexec,noatime,hidepid=2']) as { options: string[] }).options, ['noexec', 'noatime', 'hidepid=2']);
});
