// What a benchmark run leaves on the shared local servers, removed at its end: Kafka topics and consumer
// groups, MongoDB databases. A failure to remove is printed, not thrown: the figures are already out.

import type { Admin } from 'kafkajs';
import { MongoClient } from 'mongodb';
import { localServices } from '../support/local-services.js';
import { errorText } from './outcome.js';

/** Deletes the topics under `prefix.`, and the consumer groups named. */
export async function deleteTopics(admin: Admin, prefix: string, groups: string[] = []): Promise<void> {
  try {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`));
    if (topics.length > 0) await admin.deleteTopics({ topics });
    if (groups.length > 0) await admin.deleteGroups(groups).catch(() => undefined);
  } catch (err) {
    console.log(`(could not delete the topics under ${prefix}.: ${errorText(err)})`);
  }
}

export async function dropMongoDatabases(names: string[]): Promise<void> {
  const mongo = new MongoClient(localServices().mongodb.uri);
  try {
    await mongo.connect();
    for (const name of names) await mongo.db(name).dropDatabase();
  } catch (err) {
    const what = `database${names.length === 1 ? '' : 's'} ${names.join(', ')}`;
    console.log(`(could not drop the MongoDB ${what}: ${errorText(err)})`);
  } finally {
    await mongo.close();
  }
}
