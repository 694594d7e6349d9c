// TLS settings of the configuration as the drivers take them: the PEM files read once, at connect time.

import { readFileSync } from 'node:fs';
import { TidemarkError } from './errors.js';
import type { TlsConfig } from './config.js';

export interface TlsOptions {
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
}

function pem(file: string, field: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new TidemarkError('CONFIG_INVALID', `${field}: cannot read ${file}: ${(err as Error).message}`, {
      hint: 'give the path of a PEM file the tidemark process can read',
    });
  }
}

/** The options mysql2 (`ssl`) and kafkajs (`ssl`) take; undefined without TLS. `where` names the config section. */
export function tlsOptions(tls: TlsConfig | undefined, where: string): TlsOptions | undefined {
  if (!tls) return undefined;
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw new TidemarkError('CONFIG_INVALID', `${where}.tls: give certFile and keyFile together`);
  }
  return {
    ...(tls.caFile ? { ca: pem(tls.caFile, `${where}.tls.caFile`) } : {}),
    ...(tls.certFile ? { cert: pem(tls.certFile, `${where}.tls.certFile`) } : {}),
    ...(tls.keyFile ? { key: pem(tls.keyFile, `${where}.tls.keyFile`) } : {}),
    rejectUnauthorized: tls.rejectUnauthorized,
  };
}
