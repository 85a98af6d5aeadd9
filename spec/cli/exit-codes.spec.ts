import test from 'ava';
import { CliError, EXIT, asCliError } from '../../src/cli/exit-codes.js';
import { ServiceRefusal, type RefusalReason } from '../../src/service/refusal.js';

test("the service's refusals become CLI errors with their own exit codes; other errors pass through", (t) => {
  const e = asCliError(new ServiceRefusal('state /x is locked', 'stateLocked', 'stop the other service'));
  t.true(e instanceof CliError);
  t.is((e as CliError).exitCode, EXIT.stateLocked);
  t.is((e as CliError).message, 'state /x is locked');
  t.is((e as CliError).hint, 'stop the other service');
  const reasons: RefusalReason[] = [
    'badMountOption', 'mountpointMissing', 'notADirectory', 'notEmpty', 'alreadyMounted', 'staleMount',
    'noFuseDevice', 'notRoot', 'stateLocked', 'stateUnreadable', 'stateReadOnly',
  ];
  const codes = reasons.map((r) => (asCliError(new ServiceRefusal('m', r)) as CliError).exitCode);
  t.is(new Set(codes).size, reasons.length, 'one exit code per reason');
  t.false(codes.includes(EXIT.internal));
  t.is((asCliError(new ServiceRefusal('mount(8) failed', 'mountFailed')) as CliError).exitCode, EXIT.internal);
  const other = new Error('boom');
  t.is(asCliError(other), other);
});
