/**
 * What the control socket's requests do, judged by who asks. Entering and binding hand out the
 * service's own nsfs descriptors (as /proc/<service pid>/fd/N paths, which open(2) lets only a
 * caller with ptrace access to the service follow), so only root may ask; kill and wait follow
 * kill(2)'s rule (the tree checks it against the target's uids); status is root's, as the socket
 * was before it was opened to everyone.
 */
import { ActionError, type EnterTarget } from '../tree/actions.js';
import type { HandleTree } from '../tree/handle-fs.js';
import { ControlError, type ControlCaller, type ControlRequest } from './control.js';

/** A namespace to enter or bind, as the CLI receives it. */
export interface NamespacePath {
  type: string;
  inum: number;
  nsId: string | null;
  /** /proc/<service pid>/fd/<N>: the service's held nsfs descriptor. */
  path: string;
}

/** Requests only root may make: the command a person typed, and why (said in the refusal). */
const ROOT_ONLY: Partial<Record<ControlRequest['op'], readonly [command: string, why: string]>> = {
  status: ['status', 'it shows what the service holds for every user'],
  handles: ['ls', 'it lists every handle and what holds it, for every user'],
  metrics: ['status --prometheus', "it shows the service's counters for every user"],
  enter: ['exec', "it hands out the service's namespace descriptors; setns(2) needs CAP_SYS_ADMIN anyway"],
  bind: ['bind', "it hands out the service's namespace descriptors; mount(2) needs CAP_SYS_ADMIN anyway"],
};

/** Refuses a root-only request from anyone else with EPERM. */
export function checkCaller(request: ControlRequest, caller: ControlCaller): void {
  const rule = ROOT_ONLY[request.op];
  if (rule !== undefined && caller.uid !== 0) throw new ControlError('EPERM', `${rule[0]} needs root: ${rule[1]}`);
}

function pathOf(t: EnterTarget): NamespacePath {
  if (t.fd === null) throw new ControlError('ENOTSUP', `the ${t.type} namespace ${t.inum} is not held through a descriptor`);
  return { type: t.type, inum: t.inum, nsId: t.nsId, path: `/proc/${process.pid}/fd/${t.fd}` };
}

function validIno(ino: unknown): number {
  if (typeof ino !== 'number' || !Number.isSafeInteger(ino) || ino <= 0) throw new ControlError('EINVAL', 'a handle number is a positive integer');
  return ino;
}

/** Answers one request (status is passed in: it is the service's). */
export async function answerControl(
  tree: HandleTree,
  status: () => unknown,
  request: ControlRequest,
  caller: ControlCaller,
  signal: AbortSignal,
): Promise<unknown> {
  checkCaller(request, caller);
  try {
    switch (request.op) {
      case 'status':
        return status();
      case 'enter':
        return (await tree.enterTargets(validIno(request.ino))).map(pathOf);
      case 'bind':
        return pathOf(await tree.bindTarget(validIno(request.ino)));
      case 'kill': {
        const sig = request.signal;
        if (typeof sig !== 'number' || !Number.isInteger(sig) || sig < 0 || sig > 64) throw new ControlError('EINVAL', `bad signal ${String(sig)}`);
        await tree.signal(validIno(request.ino), sig, caller);
        return {};
      }
      case 'wait':
        return await tree.wait(validIno(request.ino), caller, signal);
    }
  } catch (e) {
    if (e instanceof ActionError) throw new ControlError(e.code, e.message);
    throw e;
  }
}
