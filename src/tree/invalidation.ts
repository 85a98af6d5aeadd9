/**
 * Kernel-cache invalidation, fire-and-forget.
 *
 * The notifier itself defers every message until after the reply being produced and after every
 * in-flight request on the same node, so calling it from anywhere (a handler, a table event, an
 * exit callback) is safe as long as nobody awaits it inside a handler: nothing here returns the
 * promise. Notifications the connection did not negotiate are skipped (the names then expire
 * with their timeouts).
 */
import type { Logger } from 'pino';
import type { Ino } from '../core/numbers.js';
import type { Notifier } from '../fuse/types.js';

export interface InvalidationCounters {
  entries: number;
  inodes: number;
  failed: number;
  skipped: number;
}

export class Invalidator {
  private notifier: Notifier | null = null;
  readonly counters: InvalidationCounters = { entries: 0, inodes: 0, failed: 0, skipped: 0 };

  /**
   * Told, for each INVAL_INODE (sent only for a handle whose object died), how long it took from
   * the death being noticed to the kernel having the notification (seconds): metrics.
   */
  onInodeDelivered: ((seconds: number) => void) | null = null;

  constructor(private readonly log: Logger) {}

  attach(notifier: Notifier | null): void {
    this.notifier = notifier;
  }

  /** Drop the kernel's cached name `name` in directory `parent`. */
  entry(parent: Ino, name: string): void {
    const n = this.notifier;
    if (n === null) return;
    if (!n.supports.invalEntry) {
      this.counters.skipped++;
      return;
    }
    this.counters.entries++;
    this.track(() => n.invalEntry(parent, name), { parent, name });
  }

  /** Drop the kernel's cached attributes and data of node `ino`. */
  inode(ino: Ino): void {
    const n = this.notifier;
    if (n === null) return;
    if (!n.supports.invalInode) {
      this.counters.skipped++;
      return;
    }
    this.counters.inodes++;
    const observe = this.onInodeDelivered;
    const t0 = observe === null ? 0 : performance.now();
    this.track(() => n.invalInode(ino), { ino }, observe === null ? undefined : () => observe((performance.now() - t0) / 1000));
  }

  /** Wake the kernel's pollers of the file with poll handle `kh` (FUSE_NOTIFY_POLL). */
  pollWakeup(kh: number): void {
    const n = this.notifier;
    if (n === null || n.pollWakeup === undefined) return;
    this.track(() => n.pollWakeup!(kh), { kh });
  }

  private track(send: () => Promise<boolean>, what: Record<string, unknown>, delivered?: () => void): void {
    let p: Promise<boolean>;
    try {
      p = send();
    } catch (err) {
      this.counters.failed++;
      this.log.warn({ err, ...what }, 'invalidation not sent');
      return;
    }
    p.then(
      (ok) => {
        if (!ok) this.counters.failed++;
        else delivered?.();
      },
      (err: unknown) => {
        this.counters.failed++;
        this.log.warn({ err, ...what }, 'invalidation failed');
      },
    );
  }
}
