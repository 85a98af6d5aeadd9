export * from './abi.js';
export * from './codec.js';
export * from './types.js';
export * from './device.js';
export * from './session.js';
export * from './mount.js';
export * from './module.js';
export * from './tokens.js';
