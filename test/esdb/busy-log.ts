import type { TestEventStoreData } from './test-server';

/**
 * What shares `$all` with snapcat's job streams on a busy cluster, put straight into the test server's log:
 * `otherEvents` small events of webhook and other streams, each followed by the standard projections'
 * `$>` links, and `snapshots` aggregate snapshots of about `snapshotBytes` spread among them. `between` is
 * awaited every `every` events, for the test to write its own events (through the client) in between.
 */
export async function seedBusyLog(
  data: TestEventStoreData,
  options: {
    otherEvents: number;
    snapshots: number;
    snapshotBytes: number;
    every: number;
    between: (n: number) => Promise<void>;
  },
): Promise<void> {
  const { otherEvents, snapshots, snapshotBytes, every, between } = options;
  const snapshot = JSON.stringify({ state: 'x'.repeat(snapshotBytes) });
  for (let i = 0; i < otherEvents; i += 1) {
    const stream = i % 3 === 0 ? `snapcat-webhook-deliveries-${i % 7}` : `other-${i % 50}`;
    data.project([data.write(stream, 'SomethingElse', '{}')]);
    if (i % every === 0) await between(i / every);
    if (snapshots > 0 && i % Math.floor(otherEvents / snapshots) === 1) {
      data.project([data.write(`snapcat-aggregate-${i}`, 'AggregateSnapshot', snapshot)]);
    }
  }
}
