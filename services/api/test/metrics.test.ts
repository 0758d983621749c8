import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { CommandBus } from '@snapcat/application';
import { InstrumentedEventStore, SqliteEventStore } from '@snapcat/event-store';
import { LocalSnapshotStorage } from '@snapcat/storage';
import { createApp } from '../src/app';
import { CONSOLE_DIR } from './files';
import {
  createLogger,
  createMetricsRegistry,
  openQueues,
  registerServiceMetrics,
  type CountedQueue,
  type Registry,
  type ServiceMetricsDeps,
} from '@snapcat/runtime';
import { deleteKeys } from '../../../test/support/redis';
import { testPrefix } from '../../../test/support/service';
import { BASE, JOB } from './fixture';

const OTHER_JOB = 'b1b2c3d4e5f60718293a4b5c6d7e8f90';

/** The app on a real SQLite store, with the process's registry, a logger into `lines` and `service` metrics. */
function setUp(
  options: { level?: 'debug' | 'info'; service?: (registry: Registry) => ServiceMetricsDeps } = {},
) {
  const dir = mkdtempSync(join(tmpdir(), 'snapcat-metrics-'));
  const store = new InstrumentedEventStore(new SqliteEventStore(join(dir, 'events.db')));
  const bus = new CommandBus(store);
  const registry = createMetricsRegistry();
  if (options.service) registerServiceMetrics(registry, options.service(registry));
  const lines: Record<string, unknown>[] = [];
  const log = createLogger(options.level ?? 'info', {
    write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>),
  });
  const app = createApp({
    bus,
    store,
    storeCounters: store.counters,
    defaults: { checkpointDir: join(dir, 'chk'), savepointDir: join(dir, 'sp') },
    storage: new LocalSnapshotStorage([dir]),
    log: log.error,
    metrics: registry,
    requestLog: log.debug,
    consoleDir: CONSOLE_DIR,
  });
  return {
    http: request(app),
    lines,
    registry,
    async scrape(): Promise<string> {
      const res = await request(app).get('/metrics');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
      return res.text;
    },
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The samples of a family: `name{labels} value` lines (with the _bucket/_sum/_count of a histogram). */
const samples = (text: string, name: string) =>
  text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
const value = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};
const described = (text: string, name: string, type: string) => {
  expect(text).toMatch(new RegExp(`^# HELP ${name} \\S.*$`, 'm'));
  expect(text).toMatch(new RegExp(`^# TYPE ${name} ${type}$`, 'm'));
};

describe('/metrics (prom-client)', () => {
  let t: ReturnType<typeof setUp>;
  afterEach(() => t.close());

  it('describes every family with # HELP and # TYPE, under the names dashboards already use', async () => {
    t = setUp();
    await t.http.put(`${BASE}/jobs/${JOB}`).send({ tasks: ['a'] });
    const text = await t.scrape();
    for (const name of [
      'snapcat_command_bus_commands_total',
      'snapcat_command_bus_appends_total',
      'snapcat_command_bus_events_appended_total',
      'snapcat_command_bus_conflicts_total',
      'snapcat_command_bus_events_read_total',
      'snapcat_command_bus_aggregate_snapshots_written_total',
      'snapcat_command_bus_aggregate_snapshots_loaded_total',
      'snapcat_event_store_appends_total',
      'snapcat_event_store_events_appended_total',
      'snapcat_event_store_append_failures_total',
      'snapcat_event_store_stream_reads_total',
      'snapcat_event_store_events_read_total',
      'http_requests_total',
    ]) {
      described(text, name, 'counter');
    }
    described(text, 'http_request_duration_seconds', 'histogram');
    for (const name of [
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'nodejs_heap_size_total_bytes',
      'nodejs_external_memory_bytes',
      'nodejs_eventloop_lag_seconds',
    ]) {
      described(text, name, 'gauge');
    }
    described(text, 'process_cpu_seconds_total', 'counter');
    // The counters as the hand-written text had them: no labels, read from the bus and the store.
    expect(value(text, 'snapcat_command_bus_commands_total')).toBe(1);
    expect(value(text, 'snapcat_command_bus_events_appended_total')).toBe(1);
    expect(value(text, 'snapcat_event_store_appends_total')).toBe(1);
    expect(value(text, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(/^nodejs_heap_size_used_bytes (\d+)$/m.test(text)).toBe(true); // what the bench reads
  });

  it('counts and times requests by method, route pattern and status', async () => {
    t = setUp();
    expect((await t.http.put(`${BASE}/jobs/${JOB}`).send({ tasks: ['a'] })).status).toBe(201);
    expect((await t.http.put(`${BASE}/jobs/${OTHER_JOB}`).send({ tasks: ['a'] })).status).toBe(201);
    expect((await t.http.put(`${BASE}/jobs/${JOB}`).send({ tasks: ['a'] })).status).toBe(200);
    // Errors leave the routers before they are answered: still labelled with their route's pattern.
    expect((await t.http.put(`${BASE}/jobs/${JOB}`).send({ tasks: 'nope' })).status).toBe(400);
    expect((await t.http.post(`${BASE}/jobs/${JOB}/snapshots/7/acks`).send({})).status).toBe(400);
    expect((await t.http.get(`${BASE}/jobs/${JOB}/snapshots/99/`)).status).toBe(404);
    const text = await t.scrape();
    const put201 = 'method="PUT",route="/api/v1/jobs/:jobId",status="201"';
    expect(value(text, `http_requests_total{${put201}}`)).toBe(2);
    expect(value(text, 'http_requests_total{method="PUT",route="/api/v1/jobs/:jobId",status="200"}')).toBe(1);
    expect(value(text, 'http_requests_total{method="PUT",route="/api/v1/jobs/:jobId",status="400"}')).toBe(1);
    expect(
      value(
        text,
        'http_requests_total{method="POST",route="/api/v1/jobs/:jobId/snapshots/:snapshotId/acks",status="400"}',
      ),
    ).toBe(1);
    expect(
      value(
        text,
        'http_requests_total{method="GET",route="/api/v1/jobs/:jobId/snapshots/:snapshotId",status="404"}',
      ),
    ).toBe(1);
    // The histogram: cumulative buckets up to +Inf, a count and a sum.
    const buckets = samples(text, 'http_request_duration_seconds_bucket').filter((l) => l.includes(put201));
    expect(buckets.length).toBeGreaterThanOrEqual(10);
    expect(buckets[buckets.length - 1]).toBe(`http_request_duration_seconds_bucket{le="+Inf",${put201}} 2`);
    const counts = buckets.map((l) => Number(l.split(' ').pop()));
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    expect(value(text, `http_request_duration_seconds_count{${put201}}`)).toBe(2);
    expect(value(text, `http_request_duration_seconds_sum{${put201}}`)).toBeGreaterThan(0);
    // No label holds a URL.
    expect(text).not.toContain(JOB);
  });

  it('labels unknown paths "unmatched": 50 random URLs add one series, not 50', async () => {
    t = setUp();
    await t.http.get('/healthz');
    const before = samples(await t.scrape(), 'http_requests_total').length;
    for (let i = 0; i < 50; i += 1) {
      const res = await t.http.get(`/${Math.random().toString(36).slice(2)}/${i}?q=${i}`);
      expect(res.status).toBe(404);
    }
    const text = await t.scrape();
    const after = samples(text, 'http_requests_total');
    expect(after.length - before).toBeLessThanOrEqual(2); // the 404s, and the first scrape itself
    expect(value(text, 'http_requests_total{method="GET",route="unmatched",status="404"}')).toBe(50);
    expect(samples(text, 'http_request_duration_seconds_count').length).toBe(after.length);
  });

  it('reports queue depths, the projection lag and the consumers, read on scrape', async () => {
    const prefix = testPrefix('metrics-queues');
    const queues = openQueues({ host: '127.0.0.1', port: 6379 }, prefix);
    try {
      await queues.timeouts.add('timeout', { jobId: JOB, snapshotId: 1 }, { jobId: 'q-1', delay: 60_000 });
      await queues.storage.add('discard', { jobId: JOB, snapshotId: 1, locations: [], stateHandles: [] });
      t = setUp({
        service: () => ({
          queues: () => Object.values(queues),
          projectionLag: async () => ({ last: 1500, p99: 2500, samples: 10 }),
          consumers: () => [
            { consumer: 'projector', active: true, position: { commit: 42n, prepare: 42n } },
            { consumer: 'process_manager', active: false, position: undefined },
          ],
          redisState: () => 'ready',
        }),
      });
      const text = await t.scrape();
      described(text, 'snapcat_queue_depth', 'gauge');
      expect(value(text, 'snapcat_queue_depth{queue="timeouts",state="delayed"}')).toBe(1);
      expect(value(text, 'snapcat_queue_depth{queue="storage",state="waiting"}')).toBe(1);
      expect(value(text, 'snapcat_queue_depth{queue="maintenance",state="active"}')).toBe(0);
      expect(samples(text, 'snapcat_queue_depth')).toHaveLength(5 * 7); // timeouts, storage, schedules, maintenance, flink
      described(text, 'snapcat_projection_lag_seconds', 'gauge');
      described(text, 'snapcat_projection_lag_p99_seconds', 'gauge');
      expect(value(text, 'snapcat_projection_lag_seconds')).toBe(1.5);
      expect(value(text, 'snapcat_projection_lag_p99_seconds')).toBe(2.5);
      described(text, 'snapcat_consumer_position', 'gauge');
      described(text, 'snapcat_consumer_active', 'gauge');
      expect(samples(text, 'snapcat_consumer_position')).toEqual([
        'snapcat_consumer_position{consumer="projector"} 42',
      ]);
      expect(value(text, 'snapcat_consumer_active{consumer="projector"}')).toBe(1);
      expect(value(text, 'snapcat_consumer_active{consumer="process_manager"}')).toBe(0);
    } finally {
      await Promise.all(Object.values(queues).map((q) => q.close()));
      await deleteKeys(prefix);
    }
  });

  it('a source that does not answer leaves its family empty within the timeout: /metrics never hangs', async () => {
    const stuck: CountedQueue = { name: 'stuck', getJobCounts: () => new Promise(() => {}) };
    let redisUp = true;
    t = setUp({
      service: () => ({
        queues: () => [stuck],
        projectionLag: () => new Promise(() => {}),
        redisState: () => (redisUp ? 'ready' : 'unreachable'),
        timeoutMs: 200,
      }),
    });
    const started = Date.now();
    let text = await t.scrape();
    expect(Date.now() - started).toBeLessThan(2000);
    described(text, 'snapcat_queue_depth', 'gauge');
    expect(samples(text, 'snapcat_queue_depth')).toEqual([]);
    expect(samples(text, 'snapcat_projection_lag_seconds')).toEqual([]);
    expect(value(text, 'snapcat_metrics_collect_failures_total{metric="snapcat_queue_depth"}')).toBe(1);
    // Redis known to be down: not even asked.
    redisUp = false;
    text = await t.scrape();
    expect(value(text, 'snapcat_metrics_collect_failures_total{metric="snapcat_queue_depth"}')).toBe(2);
    expect(
      value(text, 'snapcat_metrics_collect_failures_total{metric="snapcat_projection_lag_seconds"}'),
    ).toBe(2);
  });

  it('the log head position, from the event store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'snapcat-metrics-head-'));
    const store = new SqliteEventStore(join(dir, 'events.db'));
    try {
      t = setUp({ service: () => ({ store }) });
      expect(samples(await t.scrape(), 'snapcat_event_store_head_position')).toEqual([]);
      const { position } = await store.append('job-x', [{ id: 'e1', type: 'T', data: {} }], 'no_stream');
      const text = await t.scrape();
      described(text, 'snapcat_event_store_head_position', 'gauge');
      expect(value(text, 'snapcat_event_store_head_position')).toBe(Number(position.commit));
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('request ids and request logs', () => {
  let t: ReturnType<typeof setUp>;
  afterEach(() => t.close());

  it("at debug, one line per request with its id (the client's x-correlation-id, echoed back)", async () => {
    t = setUp({ level: 'debug' });
    const res = await t.http
      .put(`${BASE}/jobs/${JOB}`)
      .set('x-correlation-id', 'req-from-client-1')
      .send({ tasks: ['a'] });
    expect(res.headers['x-correlation-id']).toBe('req-from-client-1');
    const line = t.lines.find((l) => l.msg === 'request');
    expect(line).toEqual({
      level: 'debug',
      time: expect.any(String),
      msg: 'request',
      requestId: 'req-from-client-1',
      method: 'PUT',
      route: '/api/v1/jobs/:jobId',
      url: `/api/v1/jobs/${JOB}`,
      status: 201,
      durationMs: expect.any(Number),
    });
    // The id is the commands' correlation id too.
    const events = await t.http.get(`${BASE}/jobs/${JOB}/events`);
    expect(events.body.events[0].metadata.$correlationId).toBe('req-from-client-1');
  });

  it('the logged url leaves out the query (a GraphQL GET carries its document, arguments and all, there)', async () => {
    t = setUp({ level: 'debug' });
    await t.http.get(`${BASE}/jobs?secret=s3cr3t-value`);
    const line = t.lines.find((l) => l.msg === 'request');
    expect(line).toMatchObject({ url: `${BASE}/jobs` });
    expect(JSON.stringify(t.lines)).not.toContain('s3cr3t-value');
  });

  it('without an id from the client, a fresh one per request, in the header and the log line', async () => {
    t = setUp({ level: 'debug' });
    const first = await t.http.get('/healthz');
    const second = await t.http.get('/no-such-path');
    const ids = [first.headers['x-correlation-id'], second.headers['x-correlation-id']];
    expect(ids[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(ids[1]).toMatch(/^[0-9a-f-]{36}$/);
    expect(ids[0]).not.toBe(ids[1]);
    const logged = t.lines.filter((l) => l.msg === 'request');
    expect(logged.map((l) => [l.requestId, l.route, l.status])).toEqual([
      [ids[0], '/healthz', 200],
      [ids[1], 'unmatched', 404],
    ]);
  });

  it('at the default level (info), nothing per request', async () => {
    t = setUp({ level: 'info' });
    await t.http.put(`${BASE}/jobs/${JOB}`).send({ tasks: ['a'] });
    await t.http.get('/healthz');
    await t.http.get('/no-such-path');
    expect(t.lines).toEqual([]);
  });
});
