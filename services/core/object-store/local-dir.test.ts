import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { objectStoreContract } from '../../../test/support/object-store-contract.js';
import { LocalDirObjectStore } from './local-dir.js';

objectStoreContract(
  'local directory',
  () => new LocalDirObjectStore(mkdtempSync(join(tmpdir(), 'tidemark-store-'))),
  { largeBytes: 3 * 1024 * 1024 },
);
