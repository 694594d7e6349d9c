// Where tidemark's own files (schemas/) are, whether running from services/ (tsx) or from dist/.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

export function packageRoot(): string {
  if (root !== undefined) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'schemas', 'envelope.avsc'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the tidemark package root (schemas/envelope.avsc)');
    dir = parent;
  }
  root = dir;
  return dir;
}

/** A committed Avro schema from schemas/<name>.avsc, parsed. */
export function loadSchemaFile(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(packageRoot(), 'schemas', `${name}.avsc`), 'utf8')) as Record<
    string,
    unknown
  >;
}
