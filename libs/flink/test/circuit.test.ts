import { Circuit, type CircuitChange } from '../src';

function fixture(failureThreshold = 3, coolDownMs = 1_000) {
  let now = 0;
  const circuit = new Circuit({ failureThreshold, coolDownMs, now: () => now });
  const changes: CircuitChange[] = [];
  circuit.onChange((c) => changes.push(c));
  return { circuit, changes, advance: (ms: number) => (now += ms) };
}

describe('Circuit', () => {
  it('opens after K consecutive failures, not after K failures with a success between', () => {
    const { circuit, changes } = fixture(3);
    circuit.failure();
    circuit.failure();
    circuit.success();
    circuit.failure();
    circuit.failure();
    expect(circuit.state).toBe('CLOSED');
    expect(changes).toEqual([]);
    circuit.failure();
    expect(circuit.state).toBe('OPEN');
    expect(circuit.tryAcquire()).toBe(false);
    expect(changes).toEqual(['unreachable']);
  });

  it('half-opens after the cool-down and lets one probe through', () => {
    const { circuit, changes, advance } = fixture(1, 1_000);
    circuit.failure();
    advance(999);
    expect(circuit.state).toBe('OPEN');
    advance(1);
    expect(circuit.state).toBe('HALF_OPEN');
    expect(circuit.tryAcquire()).toBe(true);
    expect(circuit.tryAcquire()).toBe(false); // one probe at a time
    circuit.success();
    expect(circuit.state).toBe('CLOSED');
    expect(circuit.tryAcquire()).toBe(true);
    expect(changes).toEqual(['unreachable', 'reachable']);
  });

  it('a failed probe opens it again for another cool-down, without a second unreachable', () => {
    const { circuit, changes, advance } = fixture(2, 100);
    circuit.failure();
    circuit.failure();
    advance(100);
    expect(circuit.tryAcquire()).toBe(true);
    circuit.failure();
    expect(circuit.state).toBe('OPEN');
    advance(99);
    expect(circuit.tryAcquire()).toBe(false);
    advance(1);
    expect(circuit.tryAcquire()).toBe(true);
    expect(changes).toEqual(['unreachable']);
  });

  it('a listener that throws does not break it; unsubscribing works', () => {
    const circuit = new Circuit({ failureThreshold: 1 });
    const heard: CircuitChange[] = [];
    circuit.onChange(() => {
      throw new Error('boom');
    });
    const off = circuit.onChange((c) => heard.push(c));
    circuit.failure();
    off();
    circuit.success();
    expect(heard).toEqual(['unreachable']);
    expect(circuit.state).toBe('CLOSED');
  });

  it('defaults to 5 failures and 10 s', () => {
    const circuit = new Circuit();
    expect([circuit.failureThreshold, circuit.coolDownMs]).toEqual([5, 10_000]);
    expect(() => new Circuit({ failureThreshold: 0 })).toThrow(RangeError);
  });
});
