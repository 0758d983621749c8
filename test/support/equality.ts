import { expect } from '@jest/globals';
import { CowMap } from '@snapcat/domain';

// A CowMap's layout depends on the order it was built in; two are equal when their entries are (as
// Jest compares two native Maps). `toJSON` gives the entries sorted by key.
expect.addEqualityTesters([
  function cowMapsEqual(a: unknown, b: unknown) {
    if (!(a instanceof CowMap) || !(b instanceof CowMap)) return undefined;
    return this.equals(a.toJSON(), b.toJSON());
  },
]);
