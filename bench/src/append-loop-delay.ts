// `npx tsx bench/src/append-loop-delay.ts`: the event loop's delay while 50 callers append 1 KB events back to
// back (200 each) to the SQLite store, and the appends a second (decision 0002, issue 22).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { SqliteEventStore } from '@snapcat/event-store';

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'eld-'));
  const store = new SqliteEventStore(join(dir, 'e.db'));
  await store.append('warm', [{ id: randomUUID(), type: 'E', data: {} }], 'no_stream');
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const started = performance.now();
  let done = 0;
  await Promise.all(
    Array.from({ length: 50 }, async (_, c) => {
      for (let i = 0; i < 200; i++) {
        await store.append(
          `s-${c}`,
          [{ id: randomUUID(), type: 'Ack', data: { pad: 'x'.repeat(1000) } }],
          'any',
        );
        done++;
      }
    }),
  );
  const ms = performance.now() - started;
  h.disable();
  console.log(
    JSON.stringify({
      appendsPerSec: Math.round((done / ms) * 1000),
      loopDelayMs: { p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, max: h.max / 1e6 },
    }),
  );
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
void main();
