/**
 * Inversify wiring of the FUSE layer. No decorators: every binding is a dynamic or constant value
 * under a symbol from tokens.ts.
 *
 * The application binds FUSE_TOKENS.Logger (pino.Logger) and, to use the Server,
 * FUSE_TOKENS.FileSystem (the layer above) and optionally FUSE_TOKENS.MountOptions /
 * FUSE_TOKENS.SessionOptions. This module binds Mounter, SessionFactory and Server.
 */
import { ContainerModule } from 'inversify';
import type { Logger } from 'pino';
import type { FuseChannel } from './device.js';
import {
  type FuseMount,
  type MountOptions,
  type MountRequest,
  type MountpointState,
  type ServeOptions,
  cleanStaleMount,
  inspectMountpoint,
  mountFuse,
  parseMountOptions,
  serve,
  unmount,
} from './mount.js';
import { FuseSession, type SessionOptions } from './session.js';
import { FUSE_TOKENS } from './tokens.js';
import type { LowLevelFileSystem } from './types.js';

/** Mount operations bound to a logger. */
export interface FuseMounter {
  mount(mountpoint: string, options?: Partial<MountOptions> | string, request?: MountRequest): Promise<FuseMount>;
  unmount(mountpoint: string): Promise<void>;
  inspect(mountpoint: string): Promise<MountpointState>;
  cleanStale(mountpoint: string): Promise<void>;
}

export type SessionFactory = (fs: LowLevelFileSystem, channel: FuseChannel, options?: SessionOptions) => FuseSession;

/** Mounts the bound FileSystem and serves it. */
export interface FuseServer {
  start(mountpoint: string, options?: ServeOptions): Promise<FuseSession>;
}

export function createFuseMounter(logger: Logger): FuseMounter {
  return {
    mount: (mountpoint, options, request) => mountFuse(mountpoint, options ?? {}, logger, request),
    unmount: (mountpoint) => unmount(mountpoint, logger),
    inspect: (mountpoint) => inspectMountpoint(mountpoint),
    cleanStale: (mountpoint) => cleanStaleMount(mountpoint, logger),
  };
}

export const fuseModule = new ContainerModule(({ bind }) => {
  bind<FuseMounter>(FUSE_TOKENS.Mounter)
    .toDynamicValue((ctx) => createFuseMounter(ctx.get<Logger>(FUSE_TOKENS.Logger)))
    .inSingletonScope();

  bind<SessionFactory>(FUSE_TOKENS.SessionFactory)
    .toDynamicValue((ctx) => {
      const logger = ctx.get<Logger>(FUSE_TOKENS.Logger);
      const base = ctx.get<SessionOptions>(FUSE_TOKENS.SessionOptions, { optional: true }) ?? {};
      return (fs, channel, options) => new FuseSession(fs, channel, logger, { ...base, ...options });
    })
    .inSingletonScope();

  bind<FuseServer>(FUSE_TOKENS.Server)
    .toDynamicValue((ctx) => {
      const logger = ctx.get<Logger>(FUSE_TOKENS.Logger);
      return {
        start: (mountpoint, options) => {
          const fs = ctx.get<LowLevelFileSystem>(FUSE_TOKENS.FileSystem);
          const mountOptions = ctx.get<MountOptions>(FUSE_TOKENS.MountOptions, { optional: true }) ?? parseMountOptions();
          const base = ctx.get<SessionOptions>(FUSE_TOKENS.SessionOptions, { optional: true }) ?? {};
          const { unmount: _u, entryTimeout: _e, attrTimeout: _a, debug: _d, ...rest } = base;
          return serve(fs, mountpoint, mountOptions, logger, { ...rest, ...options });
        },
      };
    })
    .inSingletonScope();
});
