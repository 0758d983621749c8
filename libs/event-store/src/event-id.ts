import { v7 } from 'uuid';

/**
 * A new event's id: a UUID of version 7 (RFC 9562), time-ordered. The SQLite store indexes event ids (they
 * are unique); random (v4) ids land on a random page of that index, so each group commit rewrote about one
 * index page per event, while time-ordered ids append to its last page. On a 280,000-event store, 80,000
 * appends took 20-35 % less CPU (bench/NOTES.md, thirteenth round). EventStoreDB accepts any UUID.
 */
export const newEventId = (): string => v7();
