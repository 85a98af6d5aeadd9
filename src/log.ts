import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface LoggerOptions {
  level?: string;
  /** Human-readable lines instead of JSON (the CLI turns this on when stderr is a terminal). */
  pretty?: boolean;
  /** Where lines go; default stderr. */
  destination?: NodeJS.WritableStream | number;
}

export function isLogLevel(level: string): level is LevelWithSilent {
  return (LOG_LEVELS as readonly string[]).includes(level);
}

/** The one way the project makes a logger: pino, JSON lines on stderr unless told otherwise. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.HANDLEFS_LOG_LEVEL ?? 'info';
  if (!isLogLevel(level)) throw new Error(`unknown log level "${level}" (expected one of ${LOG_LEVELS.join(', ')})`);
  const destination = options.destination ?? 2;
  if (options.pretty) {
    const transport = pino.transport({ target: 'pino-pretty', options: { destination: typeof destination === 'number' ? destination : 2, colorize: false, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } });
    return pino({ level, base: undefined }, transport);
  }
  const dest = typeof destination === 'number' ? pino.destination({ fd: destination, sync: true }) : destination;
  return pino({ level, base: { pid: process.pid } }, dest);
}

/** A logger that discards everything, for tests and the consumer kit. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
