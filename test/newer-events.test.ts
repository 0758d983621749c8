import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore } from '@snapcat/event-store';
import { client, startService, type RunningService } from './support/service';
import { eventually } from './support/wait';

const JOB = 'ae1de0000beef0000ae1de0000beef00';
const STREAM = `snapcat-job-${JOB}`;

// A rolling upgrade: a newer snapcat shares the store and records an event of a schema version this one does
// not read (decision 0037; decision 0023's versions). This process must not answer from a log it cannot read,
// nor look ready: it says so on /readyz (so traffic goes to the upgraded replicas), its requests on that job
// are a 503 naming the event, never a 500 "unexpected error" nor a half-written command, and its consumers
// leave their leases to the upgraded processes.
describe('an event a newer snapcat wrote, in the store of a running one', () => {
  let dir: string;
  let file: string;
  let service: RunningService;
  let other: SqliteEventStore | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'snapcat-newer-'));
    file = join(dir, 'events.db');
    service = await startService({
      SNAPCAT_EVENT_STORE: `sqlite:${file}`,
      SNAPCAT_STORAGE_ROOTS: join(dir, 'snapshots'),
    });
  }, 60_000);

  afterAll(async () => {
    await other?.close(); // its writer thread would keep jest waiting
    await service?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('/readyz turns 503 naming the type and version; the job’s reads and commands are 503 unreadable-event', async () => {
    const api = client(service.url);
    expect((await api.put(`/jobs/${JOB}`, { tasks: ['a', 'b'] })).status).toBe(201);
    expect((await api.post(`/jobs/${JOB}/snapshots`, { kind: 'CHECKPOINT' })).status).toBe(202);
    expect((await fetch(`${service.url}/readyz`)).status).toBe(200);

    // What the newer replica writes: the shape this snapcat knows, under a version it does not.
    other = new SqliteEventStore(file);
    const [triggered] = (await other.readStream(STREAM)).filter((e) => e.type === 'SnapshotTriggered');
    await other.append(
      STREAM,
      [
        {
          id: randomUUID(),
          type: 'SnapshotTriggered',
          data: { ...(triggered!.data as object), snapshotId: 2, triggerId: 'from-the-future' },
          metadata: { actor: 'newer', schemaVersion: 99 },
        },
      ],
      'any',
    );
    const length = (await other.readStream(STREAM)).length;

    const readyz = async () => {
      const res = await fetch(`${service.url}/readyz`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    await eventually(async () => (await readyz()).status === 503, 15_000, '/readyz to turn 503');
    const ready = await readyz();
    expect(ready.body).toMatchObject({
      status: 503,
      eventStore: 'newer-events',
      eventType: 'SnapshotTriggered',
      schemaVersion: 99,
    });
    expect(ready.body.detail).toContain('this snapcat reads up to version 2');
    expect(ready.body.detail).not.toContain(JOB); // /readyz is public: the job stays in the log

    const read = await api.get(`/jobs/${JOB}`);
    expect(read.status).toBe(503);
    expect(read.body).toMatchObject({
      type: 'urn:snapcat:problem:unreadable-event',
      eventType: 'SnapshotTriggered',
      schemaVersion: 99,
    });
    expect(read.body.detail).toContain('reads up to version 2');
    expect((await api.post(`/jobs/${JOB}/snapshots`, { kind: 'CHECKPOINT' })).status).toBe(503);
    expect((await other.readStream(STREAM)).length).toBe(length); // nothing written beside it

    const graphql = await fetch(`${service.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `{ history(jobId: "${JOB}") { edges { cursor } } }` }),
    });
    const answer = (await graphql.json()) as { errors: { message: string; extensions: object }[] };
    expect(answer.errors[0]).toMatchObject({
      extensions: { code: 'UNAVAILABLE', eventType: 'SnapshotTriggered', schemaVersion: 99 },
    });

    // Its consumers give up their leases for good, for an upgraded process to take (said once each), rather
    // than hold them and resubscribe every second: the read model and the workers would stall for every replica.
    const standsDown = (consumer: string) =>
      service.logs.some((l) => l.includes(`"${consumer} stands down:`));
    await eventually(
      () => standsDown('projector') && standsDown('process manager'),
      15_000,
      'the stand-downs',
    );
    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    for (const consumer of ['projector', 'process_manager']) {
      expect(metrics).toMatch(new RegExp(`^snapcat_consumer_active\\{consumer="${consumer}"\\} 0$`, 'm'));
      expect(metrics).toMatch(new RegExp(`^snapcat_consumer_blocked\\{consumer="${consumer}"\\} 1$`, 'm'));
    }
    const logged = service.logs.length;
    await new Promise((r) => setTimeout(r, 2500));
    const since = service.logs.slice(logged).join('\n');
    expect(since).not.toContain('resubscribing');
    expect(since).not.toContain('stands down');

    const lines = service.logs.join('\n');
    expect(lines).toContain('this process is out of date');
    expect(lines.match(/"projector stands down:/g)).toHaveLength(1);
    expect(lines).not.toContain('an unexpected error');
    expect(lines).not.toMatch(/"msg":"request failed"/);
  }, 60_000);
});
