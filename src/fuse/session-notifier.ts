/**
 * Notifications of one FUSE connection (INVAL_ENTRY, INVAL_INODE, DELETE, POLL): checked against
 * what INIT negotiated, then written off the loop (the channel's notification writer) only after
 * the reply being produced and every request in flight on the same nodes, so the kernel never
 * sees an invalidation overtake the reply it concerns.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Logger } from 'pino';
import { FUSE_EXPIRE_ONLY } from './abi.js';
import {
  encodeNotifyDelete,
  encodeNotifyInvalEntry,
  encodeNotifyInvalInode,
  encodeNotifyPollWakeup,
} from './codec.js';
import type { FuseChannel } from './device.js';
import { NotifyNotSupportedError, type ConnectionInfo, type Notifier, type NotifySupport } from './types.js';

/** What the notifier needs of its session. */
export interface NotifyingSession {
  /** What INIT negotiated; undefined before. */
  readonly connection: ConnectionInfo | undefined;
  /** INIT answered (or the connection resumed): notifications may be sent. */
  readonly initialised: boolean;
  /** False once the connection ended (or DESTROY came): nothing more is written. */
  readonly open: boolean;
  readonly channel: FuseChannel;
  readonly logger: Logger;
  /** Resolves once the requests in flight on any of `nodes` are answered (undefined: none are). */
  answered(nodes: readonly number[]): Promise<void> | undefined;
}

type Capabilities = ConnectionInfo['capabilities'];

export class SessionNotifier implements Notifier {
  constructor(private readonly s: NotifyingSession) {}

  get supports(): NotifySupport {
    const c = this.s.connection?.capabilities;
    return {
      invalInode: !!c?.notifyInvalInode,
      invalEntry: !!c?.notifyInvalEntry,
      delete: !!c?.notifyDelete,
      expireOnly: !!c?.notifyExpireOnly,
    };
  }

  invalEntry(parent: number, name: string): Promise<boolean> {
    this.check('INVAL_ENTRY', (c) => c.notifyInvalEntry, 'needs protocol 7.12');
    return this.send(encodeNotifyInvalEntry(parent, name, 0), [parent], `INVAL_ENTRY n${parent} ${JSON.stringify(name)}`);
  }

  expireEntry(parent: number, name: string): Promise<boolean> {
    this.check('INVAL_ENTRY(EXPIRE_ONLY)', (c) => c.notifyExpireOnly, 'the kernel did not offer FUSE_HAS_EXPIRE_ONLY');
    return this.send(encodeNotifyInvalEntry(parent, name, FUSE_EXPIRE_ONLY), [parent], `EXPIRE_ENTRY n${parent} ${JSON.stringify(name)}`);
  }

  invalInode(nodeId: number, off = 0, len = 0): Promise<boolean> {
    this.check('INVAL_INODE', (c) => c.notifyInvalInode, 'needs protocol 7.12');
    return this.send(encodeNotifyInvalInode(nodeId, off, len), [nodeId], `INVAL_INODE n${nodeId} ${off}+${len}`);
  }

  delete(parent: number, child: number, name: string): Promise<boolean> {
    this.check('DELETE', (c) => c.notifyDelete, 'needs protocol 7.18');
    return this.send(encodeNotifyDelete(parent, child, name), [parent, child], `DELETE n${parent} n${child} ${JSON.stringify(name)}`);
  }

  pollWakeup(kh: number): Promise<boolean> {
    this.check('POLL', () => true, 'needs protocol 7.11');
    return this.send(encodeNotifyPollWakeup(kh), [], `POLL kh${kh}`);
  }

  /** Throws NotifyNotSupportedError for a notification the connection did not negotiate. */
  private check(what: string, supported: (c: Capabilities) => boolean, need: string): void {
    const conn = this.s.connection;
    if (!this.s.initialised || conn === undefined) throw new NotifyNotSupportedError(what, 'INIT has not been negotiated yet');
    if (!supported(conn.capabilities)) throw new NotifyNotSupportedError(what, `${need} (negotiated 7.${conn.minor})`);
  }

  /** Writes a notification after in-flight requests on `nodes` are answered; whether the kernel took it. */
  private async send(buf: Buffer, nodes: number[], what: string): Promise<boolean> {
    const s = this.s;
    // After the reply being produced right now (if called from inside a handler).
    await nextTurn();
    const pending = s.answered(nodes);
    if (pending !== undefined) await pending;
    if (!s.open || s.channel.closed) return false;
    try {
      await s.channel.writeNotify(buf);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        if (s.logger.isLevelEnabled('debug')) s.logger.debug(`notify ${what}: not cached (ENOENT)`);
        return true;
      }
      if (code === 'ENODEV' || code === 'ECONNABORTED' || code === 'EBADF') return false;
      s.logger.warn({ err, notification: what }, 'FUSE notification refused by the kernel');
      return false;
    }
    if (s.logger.isLevelEnabled('debug')) s.logger.debug(`notify ${what}: delivered`);
    return true;
  }
}
