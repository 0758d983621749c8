import type { ApiError, LiveState } from '../graphql';

const LABELS: Record<LiveState, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  retrying: 'Reconnecting…',
  closed: 'Not live',
};

/** Whether the page follows the job's events as they happen. */
export function LiveBadge({ state, error }: { state: LiveState; error?: ApiError | undefined }) {
  const title =
    state === 'live'
      ? 'Following the job’s snapshot events: the page refreshes as they happen'
      : (error?.message ?? 'Connecting to the job’s snapshot events');
  return (
    <span class={`live live-${state}`} data-testid="live" data-state={state} title={title}>
      <span class="dot" aria-hidden="true" />
      {LABELS[state]}
    </span>
  );
}
