/**
 * The keeper's copies of the namespaces a crashed server held, while its successor takes them over.
 */
import type { NamespaceHoldObserver } from '../sources/proc-namespace-source.js';
import type { NsType } from '../sources/types.js';

/**
 * Until the successor has decided which of the namespaces the keeper kept it takes over, a hold
 * it opens and closes on one of them (a sweep, a lookup whose grace ends) must not make the keeper
 * close its copy: that copy may be the namespace's last reference. Such releases are held back
 * and sent at the decision, for those no hold of this process keeps by then.
 */
export function guardKeptCopies(
  kept: ReadonlyArray<{ type: string; inum: number }>,
  observer: NamespaceHoldObserver,
  holds: (type: NsType, inum: number) => boolean,
): { observer: NamespaceHoldObserver; decided: () => void } {
  const pending = new Set(kept.map((k) => `${k.type}:${k.inum}`));
  const deferred = new Map<string, { type: NsType; inum: number }>();
  let deciding = pending.size > 0;
  return {
    observer: {
      held: (info, fd) => observer.held(info, fd),
      released: (type, inum) => {
        const k = `${type}:${inum}`;
        if (deciding && pending.has(k)) deferred.set(k, { type, inum });
        else observer.released(type, inum);
      },
    },
    decided: () => {
      deciding = false;
      for (const { type, inum } of deferred.values()) if (!holds(type, inum)) observer.released(type, inum);
      deferred.clear();
    },
  };
}
