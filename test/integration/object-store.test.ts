// The S3 backend against the real MinIO, held to the same contract as the local directory.

import { objectStoreContract } from '../support/object-store-contract.js';
import { S3ObjectStore } from '../../services/core/object-store/index.js';
import { localServices, uniqueName } from '../support/local-services.js';

const { s3 } = localServices();

objectStoreContract(
  'S3 (MinIO)',
  () =>
    new S3ObjectStore({
      bucket: s3.bucket,
      prefix: uniqueName('store-test'),
      endpoint: s3.endpoint,
      region: s3.region,
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
      // Small parts, so the large-object test really goes up in several.
      partBytes: 5 * 1024 * 1024,
    }),
  { largeBytes: 12 * 1024 * 1024 },
);
