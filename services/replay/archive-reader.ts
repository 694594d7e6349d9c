// Reading the archive for a restore: the data files of change manifests and of snapshots, checked against
// their SHA-256, decrypted, and decoded into change events with the schema stored in each file.

import {
  decodeManifestEntry,
  openObjectStore,
  readAvroBlocks,
  readDataFile,
  TableCodec,
  TidemarkError,
  type ChangeEvent,
  type Config,
  type Keyring,
  type ManifestEntry,
  type ObjectStore,
} from '../core/index.js';
import { keyringFromConfig } from '../tiering/cold-archive.js';

/** Any stored data file: what a reader needs to fetch, check and decode it. */
export interface DataFileRef {
  object_key: string;
  sha256: string;
  key_id: string | null;
  schema_fingerprint: string;
  rows: bigint;
  bytes: bigint;
}

export interface Archive {
  store: ObjectStore;
  prefix: string;
  keyring: Keyring | undefined;
}

export function openArchive(config: Config): Archive {
  const cold = config.tier?.cold;
  if (!cold) {
    throw new TidemarkError('CONFIG_INVALID', 'tier.cold is not configured: there is no archive to read', {
      hint: 'give the configuration the tier and cold archive use (tier.cold.url, tier.cold.prefix)',
    });
  }
  return {
    store: openObjectStore(cold.url, cold.s3),
    prefix: cold.prefix,
    keyring: keyringFromConfig(cold.encryption),
  };
}

/** Where the archive is, for people: the store and the prefix inside it. */
export function archiveUrl(archive: Archive): string {
  return archive.prefix ? `${archive.store.url.replace(/\/$/, '')}/${archive.prefix}` : archive.store.url;
}

export function archiveKey(archive: Archive, ...parts: string[]): string {
  return [archive.prefix, ...parts].filter((p) => p.length > 0).join('/');
}

export class ArchiveReader {
  private readonly codecs = new Map<string, TableCodec>();
  /** Bytes fetched so far (stored size), for progress. */
  bytesRead = 0;

  constructor(readonly archive: Archive) {}

  /** The events of one data file, in file order. */
  async events(file: DataFileRef): Promise<{ codec: TableCodec; events: ChangeEvent[] }> {
    const events: ChangeEvent[] = [];
    const codec = await this.forEach(file, (e) => events.push(e));
    return { codec, events };
  }

  /**
   * Decodes one data file record by record, handing each event over as it is read (nothing is kept, so a
   * restore's memory follows its state, not its files). Returns the file's codec.
   */
  async forEach(
    file: DataFileRef,
    each: (event: ChangeEvent, codec: TableCodec) => void,
  ): Promise<TableCodec> {
    const { store, keyring } = this.archive;
    const name = `${store.url}/${file.object_key}`;
    const body = await readDataFile(store, file as unknown as ManifestEntry, keyring);
    this.bytesRead += Number(file.bytes);
    const avro = readAvroBlocks(body, name);
    let codec = this.codecs.get(file.schema_fingerprint);
    if (!codec) {
      codec = TableCodec.fromSchema(avro.schema as Record<string, unknown>);
      this.codecs.set(codec.version, codec);
    }
    if (codec.version !== file.schema_fingerprint) {
      throw new TidemarkError(
        'OBJECT_CORRUPT',
        `${name} holds schema version ${codec.version}, its manifest says ${file.schema_fingerprint}`,
      );
    }
    let count = 0;
    for (const { count: n, data } of avro.blocks()) {
      let at = 0;
      for (let i = 0; i < n; i++) {
        let decoded;
        try {
          decoded = codec.decodeAt(data, at);
        } catch (err) {
          throw new TidemarkError(
            'OBJECT_CORRUPT',
            `${name}: record ${count} does not decode: ${(err as Error).message}`,
            {
              cause: err,
            },
          );
        }
        at = decoded.next;
        count++;
        each(decoded.event, codec);
      }
    }
    if (BigInt(count) !== file.rows) {
      throw new TidemarkError(
        'OBJECT_CORRUPT',
        `${name} holds ${count} events, its manifest says ${file.rows}`,
      );
    }
    return codec;
  }
}

/** Every manifest entry of a table with the key it is stored under, sorted by partition then offset. */
export async function tableManifests(
  archive: Archive,
  table: string,
): Promise<{ key: string; entry: ManifestEntry }[]> {
  const root = `${archiveKey(archive, 'manifests', table)}/`;
  const out: { key: string; entry: ManifestEntry }[] = [];
  for await (const info of archive.store.list(root)) {
    out.push({
      key: info.key,
      entry: await decodeManifestEntry(await archive.store.get(info.key), `${archive.store.url}/${info.key}`),
    });
  }
  return out.sort(({ entry: a }, { entry: b }) =>
    a.partition !== b.partition
      ? a.partition - b.partition
      : a.first_offset < b.first_offset
        ? -1
        : a.first_offset > b.first_offset
          ? 1
          : 0,
  );
}

/** Every manifest entry of a table, sorted by partition then offset. */
export async function tableEntries(archive: Archive, table: string): Promise<ManifestEntry[]> {
  return (await tableManifests(archive, table)).map((m) => m.entry);
}
