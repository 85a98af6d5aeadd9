/**
 * Rate limit for an error that repeats while its cause lasts (a full or read-only disk fails every
 * lookup): the first occurrence of an episode is logged in full, later ones are counted and
 * summed up in at most one short line per interval, and the end of the episode is one line.
 */
import type { Logger } from 'pino';

interface Episode {
  failures: number;
  /** Failures not yet reported in a line. */
  unreported: number;
  lastLogAt: number;
}

/** One line of text for an error: its message without the stack. */
function shortCause(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ');
}

export class RepeatedErrorLog {
  private readonly episodes = new Map<string, Episode>();

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Logs an occurrence of the error `key`: in full if it starts an episode, else counted. */
  error(key: string, err: unknown, msg: string): void {
    const t = this.now();
    const ep = this.episodes.get(key);
    if (!ep) {
      this.episodes.set(key, { failures: 1, unreported: 0, lastLogAt: t });
      this.log.error({ err }, msg);
      return;
    }
    ep.failures++;
    ep.unreported++;
    if (t - ep.lastLogAt >= this.intervalMs) {
      this.log.error(
        { cause: shortCause(err), repeats: ep.unreported, failures: ep.failures },
        `${msg} (${ep.unreported} more times in the last ${Math.round((t - ep.lastLogAt) / 1000)} s: ${shortCause(err)})`,
      );
      ep.unreported = 0;
      ep.lastLogAt = t;
    }
  }

  /** The operation behind `key` succeeded: ends its episode with one line, if there was one. */
  resolved(key: string, msg: string): void {
    const ep = this.episodes.get(key);
    if (!ep) return;
    this.episodes.delete(key);
    this.log.warn({ failures: ep.failures }, `${msg} after ${ep.failures} failures`);
  }
}
