import { CLUSTERS_STREAM, ClusterRepository, HeadersNeedKeyError } from '@snapcat/application';
import { DEVELOPMENT_SECRET_KEY, loadConfig } from '@snapcat/runtime';
import { MemoryEventStore } from '@snapcat/event-store';
import { SecretBox, openClusters } from '../src';

// openClusters: the cluster registry with the key webhook secrets are sealed with, the same in every process.
const KEY = 'test-secret-key-of-at-least-32-characters';
const env = (extra: Record<string, string>) =>
  loadConfig({ SNAPCAT_REDIS_URL: 'redis://127.0.0.1:6379', ...extra });

describe('openClusters', () => {
  it('with SNAPCAT_SECRET_KEY: header values sealed with it, opened by another process with the same key', async () => {
    const store = new MemoryEventStore();
    const api = openClusters(env({ SNAPCAT_SECRET_KEY: KEY }), store);
    await api.put('flink', { restUrl: 'http://flink:8081', headers: { Authorization: 'Bearer s3cret' } });
    const [event] = await store.readStream(CLUSTERS_STREAM);
    expect(JSON.stringify(event!.data)).not.toContain('s3cret');
    const sealed = (event!.data as { headers: { value: Parameters<SecretBox['open']>[0] }[] }).headers[0]!;
    expect(new SecretBox(KEY).open(sealed.value)).toBe('Bearer s3cret');
    const workers = openClusters(env({ SNAPCAT_SECRET_KEY: KEY }), store);
    expect(await workers.get('flink')).toEqual({
      name: 'flink',
      restUrl: 'http://flink:8081',
      headers: { authorization: 'Bearer s3cret' },
    });
  });

  it('in development without a key: the public development key; outside development: no headers', async () => {
    const store = new MemoryEventStore();
    const dev = openClusters(env({ SNAPCAT_ENV: 'development' }), store);
    expect(dev.sealsHeaders).toBe(true);
    await dev.put('flink', { restUrl: 'http://flink:8081', headers: { 'x-key': 'k' } });
    const opened = new ClusterRepository(store, { box: new SecretBox(DEVELOPMENT_SECRET_KEY) });
    expect((await opened.get('flink'))!.headers).toEqual({ 'x-key': 'k' });

    const keyless = openClusters(env({}), new MemoryEventStore());
    expect(keyless.sealsHeaders).toBe(false);
    await expect(
      keyless.put('flink', { restUrl: 'http://f', headers: { 'x-key': 'k' } }),
    ).rejects.toBeInstanceOf(HeadersNeedKeyError);
    await keyless.put('flink', { restUrl: 'http://f' });
    expect(await keyless.list()).toEqual([{ name: 'flink', restUrl: 'http://f', headers: {} }]);
  });
});
