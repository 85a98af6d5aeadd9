/** Parsing of exec, bind, kill and wait; signal names; how an ending is told. */
import test from 'ava';
import { parseCommand, signalName, signalNumber } from '../../src/cli/args.js';
import { describeEnding, devString } from '../../src/cli/act.js';
import { CliError, EXIT } from '../../src/cli/exit-codes.js';

const usage = (argv: string[], pattern: RegExp) => (t: import('ava').ExecutionContext) => {
  const e = t.throws(() => parseCommand(argv), { instanceOf: CliError });
  t.is(e.exitCode, EXIT.usage);
  t.regex(e.message, pattern);
};

test('exec keeps its words; -- splits targets from the command', (t) => {
  t.deepEqual(parseCommand(['exec', 'h', '--', 'ip', '-br', 'link']), { name: 'exec', words: ['h', '--', 'ip', '-br', 'link'], split: 1 });
  t.deepEqual(parseCommand(['exec', 'a', 'b', 'sh']), { name: 'exec', words: ['a', 'b', 'sh'] });
  t.deepEqual(parseCommand(['exec', '--help']), { name: 'help', topic: 'exec' });
});
test('exec without a target or a command is a usage error', usage(['exec', '--', 'sh'], /missing a TARGET/));
test('exec with nothing after -- is a usage error', usage(['exec', 'h', '--'], /missing the command/));
test('exec with one word is a usage error', usage(['exec', 'h'], /TARGET\.\.\. \[--\] CMD/));

test('bind takes exactly TARGET FILE', (t) => {
  t.deepEqual(parseCommand(['bind', 'h', '/run/netns/a']), { name: 'bind', target: 'h', file: '/run/netns/a' });
});
test('bind with one argument is a usage error', usage(['bind', 'h'], /TARGET FILE/));

test('kill: SIGTERM by default; -s takes names and numbers', (t) => {
  t.deepEqual(parseCommand(['kill', 'a', 'b']), { name: 'kill', signal: 'SIGTERM', targets: ['a', 'b'] });
  t.deepEqual(parseCommand(['kill', '-s', 'KILL', 'a']), { name: 'kill', signal: 'KILL', targets: ['a'] });
  t.deepEqual(parseCommand(['kill', '--signal', '10', 'a']), { name: 'kill', signal: '10', targets: ['a'] });
});
test('kill with an unknown signal is a usage error', usage(['kill', '-s', 'SIGNOPE', 'a'], /unknown signal 'SIGNOPE'/));
test('kill without a target is a usage error', usage(['kill'], /missing a TARGET/));
test('wait without a target is a usage error', usage(['wait'], /missing a TARGET/));

test('signal names and numbers', (t) => {
  t.is(signalNumber('SIGKILL'), 9);
  t.is(signalNumber('kill'), 9);
  t.is(signalNumber('usr1'), 10);
  t.is(signalNumber('0'), 0);
  t.is(signalNumber('65'), undefined);
  t.is(signalNumber('NOPE'), undefined);
  t.is(signalName(9), 'SIGKILL');
  t.is(signalName(40), 'signal 40');
});

test('endings read as wait prints them', (t) => {
  t.is(describeEnding({ state: 'exited', code: 42 }), 'exited 42');
  t.is(describeEnding({ state: 'killed', signal: 9 }), 'killed by SIGKILL');
  t.is(describeEnding({ state: 'unknown' }), 'ended (how is unknown)');
});

test('st_dev as mountinfo writes it', (t) => {
  t.is(devString(0x2en), '0:46');
  t.is(devString((8n << 8n) | 1n), '8:1');
  t.is(devString(0x100000n | (259n << 8n)), '259:256');
});
