import { randomBytes } from 'node:crypto';
import { newEventId } from './event-id';
import { WrongExpectedVersionError, type EventStore } from './port';

/** The stream that names a store: one event, written by the first process that opens the store. */
export const STORE_IDENTITY_STREAM = 'snapcat-store';
const IDENTIFIED = 'StoreIdentified';

/** 16 hex digits: short enough to live in every Redis key, random enough never to repeat. */
export const STORE_ID = /^[0-9a-f]{16}$/;

/**
 * The store's stable id. It is written once, into the log itself (so a copied or restored store keeps it and
 * a fresh one gets a new one), by the first process that opens the store; every later process, and every
 * process racing the first, reads the same id back.
 */
export async function storeIdentity(store: EventStore): Promise<string> {
  const existing = await readIdentity(store);
  if (existing) return existing;
  try {
    await store.append(
      STORE_IDENTITY_STREAM,
      [
        {
          id: newEventId(),
          type: IDENTIFIED,
          data: { storeId: randomBytes(8).toString('hex'), createdAt: new Date().toISOString() },
        },
      ],
      'no_stream',
    );
  } catch (error) {
    if (!(error instanceof WrongExpectedVersionError)) throw error; // another process identified it first
  }
  const identity = await readIdentity(store);
  if (!identity) throw new Error(`the event store has no readable identity in ${STORE_IDENTITY_STREAM}`);
  return identity;
}

async function readIdentity(store: EventStore): Promise<string | undefined> {
  const [first] = await store.readStream(STORE_IDENTITY_STREAM, { maxCount: 1 });
  if (!first) return undefined;
  const storeId = (first.data as { storeId?: unknown }).storeId;
  if (first.type !== IDENTIFIED || typeof storeId !== 'string' || !STORE_ID.test(storeId)) {
    throw new Error(`the event store's identity stream ${STORE_IDENTITY_STREAM} holds no valid store id`);
  }
  return storeId;
}
