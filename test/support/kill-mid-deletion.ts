import { QueueEvents } from 'bullmq';
import { namespaceOf } from './namespace';
import { sleep, until } from './wait';

interface SnapshotBody {
  status: string;
  discard: { bytesReclaimed: number | null } | null;
}

/**
 * Requests a snapshot's discard, kills the service (SIGKILL) once its storage worker has started deleting
 * and before it is done, restarts it, and waits for DISCARDED; meanwhile it watches that the catalog never
 * says DISCARDED while something is left. What the kill left and the final snapshot are returned.
 */
export async function discardKilledMidway(o: {
  /** The service's event store and Redis prefix: where its storage queue is. */
  eventStore: string;
  queuePrefix: string;
  jobId: string;
  snapshotId: number;
  /** The snapshot as the (current) service answers it; may throw while the service is down. */
  snapshot: () => Promise<SnapshotBody>;
  requestDiscard: () => Promise<number>;
  /** Files or objects of the snapshot still there. */
  remaining: () => Promise<number>;
  /** True once the deletion has visibly begun: the moment to kill. */
  begun: () => Promise<boolean>;
  kill: () => Promise<void>;
  restart: () => Promise<void>;
}): Promise<{ left: number; final: SnapshotBody; violations: number }> {
  let violations = 0;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const s = await o.snapshot().catch(() => undefined);
      if (s?.status === 'DISCARDED' && (await o.remaining()) > 0) violations += 1;
      await sleep(10);
    }
  })();
  const events = new QueueEvents('storage', {
    connection: { url: 'redis://127.0.0.1:6379' },
    prefix: await namespaceOf(o.eventStore, o.queuePrefix),
    // From the stream's start, not from `$`: its first XREAD may be issued after `waitUntilReady`, and a
    // discard enqueued and taken before it would be missed (the test then waited 45 s for nothing, twice,
    // on a loaded machine). The job id is this snapshot's alone, so older events are no match.
    lastEventId: '0-0',
  });
  await events.waitUntilReady();
  const active = new Promise<void>((resolve) =>
    events.on('active', ({ jobId }) => {
      if (jobId === `discard-${o.jobId}-${o.snapshotId}`) resolve();
    }),
  );
  try {
    expect(await o.requestDiscard()).toBe(202);
    // Generous: a service just restarted after a SIGKILL waits out the dead one's leases (5 s) before its
    // process manager enqueues the discard, and CI runs many suites side by side on two cores.
    await Promise.race([active, sleep(45_000).then(() => Promise.reject(new Error('discard never active')))]);
    // The worker lists and measures the objects before it deletes the first: on a loaded machine that has
    // taken over 10 s, and a kill before any deletion proves nothing.
    const killAt = Date.now() + 60_000;
    while (Date.now() < killAt && !(await o.begun())) await sleep(1);
    await o.kill();
    const left = await o.remaining();
    await o.restart();
    const final = await until(
      async () => {
        const s = await o.snapshot();
        return s.status === 'DISCARDED' ? s : undefined;
      },
      // The dead worker's lock lapses first (lockDuration 10 s + stalledInterval 5 s), then the rest is
      // deleted; on a loaded two-core CI machine that has taken over a minute.
      150_000,
      'DISCARDED after restart',
    );
    return { left, final, violations };
  } finally {
    watching = false;
    await watcher;
    await events.close();
  }
}
