import type { ComponentChildren } from 'preact';
import type { ApiError, LiveState } from '../graphql';
import { StatusBadge } from '../ui';

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

/** The head of a page that follows its job live: the title (with a status badge), the live badge, actions. */
export function LivePageHead(props: {
  title: ComponentChildren;
  status: string | undefined;
  live: { state: LiveState; error?: ApiError | undefined };
  children?: ComponentChildren;
}) {
  return (
    <div class="page-head">
      <h1>
        {props.title} {props.status && <StatusBadge status={props.status} />}
      </h1>
      <div class="head-actions">
        <LiveBadge state={props.live.state} error={props.live.error} />
        {props.children}
      </div>
    </div>
  );
}
