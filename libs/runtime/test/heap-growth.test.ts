import { HEAP_GROWING_PERCENT, limitHeapGrowth } from '../src/boot';

// What the flag does to memory is measured by bench #10 (decision 0027); here, that an operator's own
// setting wins over snapcat's.
describe('limitHeapGrowth', () => {
  it(`sets V8's heap growth to ${HEAP_GROWING_PERCENT} % when node was given no setting of its own`, () => {
    expect(limitHeapGrowth(['--enable-source-maps', '--max-old-space-size=2048'])).toBe(true);
  });

  it('leaves a --heap-growing-percent given on node’s command line as it is', () => {
    expect(limitHeapGrowth(['--heap-growing-percent=20'])).toBe(false);
    expect(limitHeapGrowth(['--enable-source-maps', '--heap_growing_percent=80'])).toBe(false);
  });
});
