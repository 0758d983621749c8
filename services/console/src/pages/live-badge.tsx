import type { ComponentChildren } from 'preact';
import type { ApiError, LiveState } from '../graphql';
import { StatusBadge } from '../ui';

type BadgeState = LiveState | 'stale';

const LABELS: Record<BadgeState, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  retrying: 'Reconnecting…',
  closed: 'Not live',
  stale: 'Stale',
};

/**
 * Whether the page follows the job's events as they happen: the subscription's state, but Stale while it is
 * open and one of the page's last reads failed, whatever the reason (what the page shows may be old, or
 * missing), until a read succeeds.
 */
export function LiveBadge(props: {
  state: LiveState;
  error?: ApiError | undefined;
  readError?: ApiError | undefined;
  /** What Live and Connecting mean on this page; a job's page follows its events. */
  titles?: { live: string; connecting: string };
}) {
  const stale = props.state === 'live' && props.readError !== undefined;
  const state: BadgeState = stale ? 'stale' : props.state;
  const error = stale ? props.readError : props.error;
  const title =
    state === 'live'
      ? (props.titles?.live ?? 'Following the job’s snapshot events: the page refreshes as they happen')
      : (error?.message ?? props.titles?.connecting ?? 'Connecting to the job’s snapshot events');
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
  /** The error of the page's last read, if it failed. */
  readError: ApiError | undefined;
  children?: ComponentChildren;
}) {
  return (
    <div class="page-head">
      <h1>
        {props.title} {props.status && <StatusBadge status={props.status} />}
      </h1>
      <div class="head-actions">
        <LiveBadge state={props.live.state} error={props.live.error} readError={props.readError} />
        {props.children}
      </div>
    </div>
  );
}
