import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newJobId } from './support/ids';
import { client, startService } from './support/service';
import { sleep } from './support/wait';

describe('SIGTERM with GraphQL subscriptions open (a console tab showing a job)', () => {
  it('ends each stream with its complete event and stops at once, drained; not after the whole grace', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'snapcat-sse-shutdown-'));
    const service = await startService({
      SNAPCAT_EVENT_STORE: `sqlite:${join(dir, 'events.db')}`,
      SNAPCAT_STORAGE_ROOTS: join(dir, 'snapshots'),
    });
    try {
      const jobId = newJobId();
      expect((await client(service.url).put(`/jobs/${jobId}`, { tasks: ['a'] })).status).toBe(201);
      const res = await fetch(`${service.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ query: `subscription { snapshotEvents(jobId: "${jobId}") { type } }` }),
      });
      expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
      let text = '';
      const reading = (async () => {
        const decoder = new TextDecoder();
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          text += decoder.decode(chunk, { stream: true });
        }
        return 'ended';
      })().catch((error: Error) => `cut: ${error.message}`);
      await sleep(300);
      const stopping = Date.now();
      expect(await service.stop('SIGTERM')).toBe(0);
      expect(Date.now() - stopping).toBeLessThan(3000); // the grace is 10 s; its drain 8 s
      expect(await reading).toBe('ended');
      expect(text).toContain('event: complete');
      const stopped = service.logs.find((l) => l.includes('"msg":"stopped"'));
      expect(JSON.parse(stopped!)).toMatchObject({ drained: true });
    } finally {
      await service.stop('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
