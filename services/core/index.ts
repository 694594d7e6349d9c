// services/core: what more than one service needs. Services import from here, never from each other.

export * from './errors.js';
export * from './position.js';
export * from './config.js';
export * from './logger.js';
export * from './table-schema.js';
export * from './avro.js';
export * from './change-event.js';
export * from './package-root.js';
export * from './kafka.js';
export * from './http-server.js';
export * from './schema-catalog.js';
export * from './object-store/index.js';
export * from './encryption.js';
export * from './avro-file.js';
export * from './archive-layout.js';
export * from './archive.js';
export * from './table-pattern.js';
export * from './bson-row.js';
export * from './sleep.js';
export * from './worker.js';
export * from './alerts.js';
export * from './tls.js';
