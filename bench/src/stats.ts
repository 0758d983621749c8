/** The value at quantile `q` (0..1) of `sorted` (ascending); undefined when it is empty. */
export const quantile = (sorted: readonly number[], q: number): number | undefined =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

/** The value at quantile `q` (0..1) of `xs`, in any order; NaN for none. */
export const percentile = (xs: readonly number[], q: number): number =>
  quantile(
    [...xs].sort((a, b) => a - b),
    q,
  ) ?? NaN;
