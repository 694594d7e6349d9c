// services/core: what more than one service needs. Services import from here, never from each other.

export * from './errors.js';
export * from './position.js';
export * from './config.js';
export * from './logger.js';
