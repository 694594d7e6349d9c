// The chat messages the benchmarks write into their `messages` table: each row's body and creation time,
// derived from its id so that a run writes the same rows every time.

import type { TableSchema } from '../../services/core/index.js';

/** The `chat.messages` table as capture describes it, for benchmarks that write change events themselves. */
export const MESSAGES_TABLE: TableSchema = {
  db: 'chat',
  table: 'messages',
  columns: [
    { name: 'id', type: 'bigint' },
    { name: 'room_id', type: 'int' },
    { name: 'user_id', type: 'bigint' },
    { name: 'body', type: 'varchar' },
    { name: 'created_at', type: 'datetime', fsp: 6 },
  ],
  primaryKey: ['id'],
};

const BODIES = [
  'has anyone started on the reading for Thursday? I am stuck on the second chapter already',
  'the slides from today are up on the course page, the diagrams are near the end of the deck',
  'can we move the group meeting to 4pm, the library rooms are all booked before then sorry',
  'reminder: the quiz covers weeks three to five, bring a calculator and a pencil please ✏️',
  'thanks! that explanation of the proof finally made it click for me, much appreciated 🙏',
  'is the lab report due at midnight or at the start of class? the syllabus says both dates',
];

/** The body of message `id`: its number, then one of a few sentences (some with an emoji). */
export function messageBody(id: number): string {
  return `#${id} ${BODIES[id % BODIES.length]}`;
}

/** `tsMs` as DATETIME(6) text, the three digits below the millisecond taken from `id`. */
export function messageTime(tsMs: number, id: number): string {
  const iso = new Date(tsMs).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}${String(id % 1000).padStart(3, '0')}`;
}
