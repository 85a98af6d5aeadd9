/**
 * Timers the tree schedules (the namespace grace period, the dormant-inode sweep), behind an
 * interface so tests can drive time by hand.
 */
import type { Clock } from '../sources/types.js';

/** A scheduled timer; cancel() stops it (harmless once it ran). */
export interface TimerHandle {
  cancel(): void;
}

/** The clock and timers the tree uses: real ones in the service, ManualTimers in the kit. */
export interface Timers extends Clock {
  /** Calls fn once after `ms` milliseconds (never synchronously). */
  setTimeout(fn: () => void, ms: number): TimerHandle;
}

/** Real timers over a clock; unref()ed so they never keep the process alive. */
export function realTimers(clock: Clock = { now: () => Date.now() }): Timers {
  return {
    now: () => clock.now(),
    setTimeout(fn, ms) {
      const t = setTimeout(fn, Math.max(0, ms));
      t.unref();
      return { cancel: () => clearTimeout(t) };
    },
  };
}

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** Something ManualTimers can move forward: a FakeClock. */
export interface AdvancableClock extends Clock {
  advance(ms: number): void;
}

/**
 * Timers that fire only when told: advance(ms) moves the clock (a FakeClock, so that start times
 * of fake processes follow) through every due timer in order, running each at its time.
 */
export class ManualTimers implements Timers {
  private readonly pending: Pending[] = [];
  private seq = 0;

  constructor(readonly clock: AdvancableClock) {}

  now(): number {
    return this.clock.now();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const p: Pending = { at: this.clock.now() + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.pending.push(p);
    return {
      cancel: () => {
        p.cancelled = true;
      },
    };
  }

  /** Timers scheduled and not yet fired nor cancelled. */
  get size(): number {
    return this.pending.filter((p) => !p.cancelled).length;
  }

  /** Runs every timer due within `ms` from now, in time order, then leaves the clock at now + ms. */
  advance(ms: number): void {
    const end = this.clock.now() + ms;
    for (;;) {
      let next: Pending | undefined;
      for (const p of this.pending) {
        if (p.cancelled || p.at > end) continue;
        if (next === undefined || p.at < next.at || (p.at === next.at && p.seq < next.seq)) next = p;
      }
      if (next === undefined) break;
      this.pending.splice(this.pending.indexOf(next), 1);
      if (next.at > this.clock.now()) this.clock.advance(next.at - this.clock.now());
      next.fn();
    }
    for (let i = this.pending.length - 1; i >= 0; i--) if (this.pending[i]!.cancelled) this.pending.splice(i, 1);
    if (end > this.clock.now()) this.clock.advance(end - this.clock.now());
  }
}
