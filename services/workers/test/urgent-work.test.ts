import { UrgentWork } from '../src/urgent-work';

const deferred = () => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
};
const turns = async (n: number) => {
  for (let i = 0; i < n; i += 1) await new Promise((r) => setImmediate(r));
};

describe('UrgentWork: housekeeping waits while work due at an instant runs', () => {
  it('has nothing to wait for when no urgent work runs', () => {
    expect(new UrgentWork().idle()).toBeUndefined();
  });

  it('holds the waiters until every run overlapping them has finished, and passes results and errors through', async () => {
    const urgent = new UrgentWork();
    const first = deferred();
    const second = deferred();
    const a = urgent.run(async () => {
      await first.promise;
      return 'a';
    });
    const b = urgent.run(async () => {
      await second.promise;
      throw new Error('b failed');
    });
    let resumed = false;
    void urgent.idle()!.then(() => (resumed = true));
    first.resolve();
    expect(await a).toBe('a');
    await turns(3);
    expect(resumed).toBe(false); // the second run still goes on
    second.resolve();
    await expect(b).rejects.toThrow('b failed');
    await turns(3);
    expect(resumed).toBe(true);
    expect(urgent.idle()).toBeUndefined();
  });
});
