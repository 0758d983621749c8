// Small pieces the pages share.
import { type ComponentChildren, Fragment, type RefObject } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { formatRelative } from './format';
import type { ApiError } from './graphql';
import type { Actions } from './hooks';

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** An instant in the reader's time zone, to the second. */
export const formatInstant = (iso: string | null | undefined): string => {
  if (!iso) return '—';
  const at = Date.parse(iso);
  return Number.isNaN(at) ? iso : dateTime.format(at);
};

/**
 * "3 min ago", the exact instant on hover and for machines. `now` is the page's clock tick (it re-renders
 * the page); data fetched since the tick must not read as "in a moment", hence the later of the two.
 */
export function Ago({ iso, now }: { iso: string | null | undefined; now: number }) {
  if (!iso) return <span class="muted">—</span>;
  return (
    <time dateTime={iso} title={`${formatInstant(iso)} (${iso})`}>
      {formatRelative(iso, Math.max(now, Date.now()))}
    </time>
  );
}

/** The exact instant, "3 min ago" on hover. */
export function Instant({ iso, now }: { iso: string | null | undefined; now: number }) {
  if (!iso) return <span class="muted">—</span>;
  return (
    <time dateTime={iso} title={`${formatRelative(iso, Math.max(now, Date.now()))} (${iso})`}>
      {formatInstant(iso)}
    </time>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge status-${status.toLowerCase()}`}>{status}</span>;
}

/** An error for people: role=alert, so that screen readers say it when it appears. */
export function Alert({ error, onDismiss }: { error: ApiError | null | undefined; onDismiss?: () => void }) {
  if (!error) return null;
  return (
    <div class="alert" role="alert" data-code={error.code}>
      <p>
        {error.code === 'FORBIDDEN' ? 'Not allowed: ' : ''}
        {error.message}
      </p>
      {onDismiss && (
        <button type="button" class="link" onClick={onDismiss}>
          Dismiss
        </button>
      )}
    </div>
  );
}

/** An action's outcome (role=status: announced politely). Always in the page, so that it is announced. */
export function Notice({ text }: { text: string | null }) {
  return (
    <div class="notice" role="status" hidden={!text}>
      {text ?? ''}
    </div>
  );
}

/** A table that scrolls sideways inside its own box on narrow screens (keyboard-scrollable: focusable). */
export function TableWrap({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <div class="table-wrap" role="region" aria-label={label} tabIndex={0}>
      {children}
    </div>
  );
}

export type Fact = [term: string, value: ComponentChildren];

/** Key/value pairs; `fields`: the terms are the API's field names (set in code). */
export function Facts({ items, fields = false }: { items: Fact[]; fields?: boolean }) {
  return (
    <dl class={fields ? 'facts fields' : 'facts'}>
      {items.map(([term, value]) => (
        <div key={term}>
          <dt>{term}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}

export const Mono = ({ children, title }: { children: ComponentChildren; title?: string }) => (
  <code class="mono" title={title}>
    {children}
  </code>
);

export const yesNo = (value: boolean | null | undefined) =>
  value === null || value === undefined ? '—' : value ? 'yes' : 'no';

export function Loading({ what }: { what: string }) {
  return (
    <p class="muted loading" aria-live="polite">
      Loading {what}…
    </p>
  );
}

/** Shows `ref`'s dialog as a modal when `open` turns true (`onOpen` first), closes it when false or unmounted. */
function useModal(ref: RefObject<HTMLDialogElement | null>, open: boolean, onOpen: () => void) {
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) {
      onOpen();
      dialog.showModal();
    } else if (!open && dialog.open) {
      dialog.close();
    }
  }, [open]);
  useEffect(
    () => () => {
      if (ref.current?.open) ref.current.close();
    },
    [],
  );
}

/**
 * A modal confirmation (showModal: focus stays inside, Escape cancels). It stays in the document, closed,
 * between uses: opening it changes its text and `open`, nothing else. The optional reason goes to
 * `onConfirm` (null when left empty), with the `force` box when there is one (`forceLabel`). `children` are
 * fields of the caller's own, above the buttons; `reason={false}` leaves the reason out, `tone="primary"` is
 * for an action that destroys nothing.
 */
export function ConfirmDialog(props: {
  open: boolean;
  title: string;
  message: string;
  confirmLabel: string;
  busy: boolean;
  forceLabel?: string;
  reason?: boolean;
  tone?: 'danger' | 'primary';
  /** Its data-testid, and the prefix of its elements' ids (one page may hold several). */
  testid?: string;
  children?: ComponentChildren;
  onConfirm(reason: string | null, force: boolean): void;
  onCancel(): void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const testid = props.testid ?? 'confirm';
  const [reason, setReason] = useState('');
  const [force, setForce] = useState(false);
  useModal(ref, props.open, () => {
    setReason('');
    setForce(false);
  });
  return (
    <dialog
      ref={ref}
      class="confirm"
      data-testid={testid}
      aria-labelledby={`${testid}-title`}
      aria-describedby={`${testid}-message`}
      onClose={() => {
        // Escape closes it natively: tell the owner.
        if (props.open) props.onCancel();
      }}
    >
      <form
        onSubmit={(event) => {
          event.preventDefault();
          props.onConfirm(reason.trim() === '' ? null : reason.trim(), force);
        }}
      >
        <h2 id={`${testid}-title`}>{props.title}</h2>
        <p id={`${testid}-message`}>{props.message}</p>
        {props.reason !== false && (
          <Field label="Reason (optional)">
            <input
              name="reason"
              type="text"
              autoComplete="off"
              maxLength={500}
              value={reason}
              onInput={(event) => setReason(event.currentTarget.value)}
            />
          </Field>
        )}
        {props.children}
        {props.forceLabel && (
          <Check name="force" label={props.forceLabel} checked={force} onChange={setForce} />
        )}
        <div class="dialog-actions">
          <button type="button" data-action="cancel" onClick={props.onCancel}>
            Cancel
          </button>
          <button type="submit" class={props.tone ?? 'danger'} data-action="confirm" disabled={props.busy}>
            {props.confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}

/** A "Load more" button with what is shown so far. */
export function More(props: {
  shown: number;
  hasMore: boolean;
  loading: boolean;
  testid: string;
  label: string;
  onMore(): void;
}) {
  return (
    <div class="more">
      <span class="muted">{props.shown} shown</span>
      {props.hasMore && (
        <button type="button" data-testid={props.testid} disabled={props.loading} onClick={props.onMore}>
          {props.loading ? 'Loading…' : props.label}
        </button>
      )}
    </div>
  );
}

/** A labelled filter: "All" (the empty value) and then each option, as `[value, label]` or a value alone. */
export function FilterSelect(props: {
  label: string;
  name: string;
  value: string;
  options: readonly (string | readonly [string, string])[];
  onChange: (value: string) => void;
}) {
  return (
    <Field label={props.label}>
      <select name={props.name} value={props.value} onChange={(e) => props.onChange(e.currentTarget.value)}>
        <option value="">All</option>
        {props.options.map((option) => {
          const [value, label] = typeof option === 'string' ? [option, option] : option;
          return (
            <option key={value} value={value}>
              {label}
            </option>
          );
        })}
      </select>
    </Field>
  );
}

/** A checkbox with its label. */
export function Check(props: {
  name: string;
  label: string;
  checked: boolean;
  onChange(checked: boolean): void;
}) {
  return (
    <label class="check">
      <input
        type="checkbox"
        name={props.name}
        checked={props.checked}
        onChange={(event) => props.onChange(event.currentTarget.checked)}
      />
      <span>{props.label}</span>
    </label>
  );
}

/** A form control with its visible label; `width` narrows or widens it. */
export function Field({
  label,
  width,
  children,
}: {
  label: string;
  width?: 'narrow' | 'wide';
  children: ComponentChildren;
}) {
  return (
    <label class={width ? `field ${width}` : 'field'}>
      <span>{label}</span>
      {children}
    </label>
  );
}

/** A column's heading: its text, or that with `num` (numbers, right-aligned) and a `title` explaining it. */
export type Column = string | { label: string; num?: boolean; title?: string };

/**
 * A table of `items`, one `row` each, under its caption and column headings (a `false` column is left out).
 * With `empty`, no items show that sentence across the columns.
 */
export function DataTable<T>(props: {
  testid?: string;
  compact?: boolean;
  caption: ComponentChildren;
  columns: readonly (Column | false)[];
  items: readonly T[];
  row(item: T, index: number): ComponentChildren;
  empty?: string;
}) {
  const columns = props.columns.filter((column): column is Column => column !== false);
  return (
    <table data-testid={props.testid} class={props.compact ? 'data compact' : 'data'}>
      <caption>{props.caption}</caption>
      <thead>
        <tr>
          {columns.map((column) =>
            typeof column === 'string' ? (
              <th scope="col">{column}</th>
            ) : (
              <th scope="col" class={column.num ? 'num' : undefined} title={column.title}>
                {column.label}
              </th>
            ),
          )}
        </tr>
      </thead>
      <tbody>
        {props.empty !== undefined && props.items.length === 0 && (
          <tr>
            <td colSpan={columns.length} class="muted">
              {props.empty}
            </td>
          </tr>
        )}
        {props.items.map(props.row)}
      </tbody>
    </table>
  );
}

/** A page that is not there: what is missing, and the way back to all jobs. */
export function NotFound(props: { title: string; focusable?: boolean; children: ComponentChildren }) {
  return (
    <div class="empty">
      <h1 tabIndex={props.focusable ? -1 : undefined}>{props.title}</h1>
      <p>
        {props.children} <a href="#/">All jobs</a>
      </p>
    </div>
  );
}

/** Why a job is missing: there is none, or the token may not see it. */
export const JobNotVisible = ({ jobId }: { jobId: string }) => (
  <>
    There is no job <Mono>{jobId}</Mono>, or your token may not see its namespace.
  </>
);

/** The trail from all jobs to this page: links to those above it, then this page's name. */
export function Crumbs({
  above,
  current,
}: {
  above: [href: string, name: string][];
  current: ComponentChildren;
}) {
  return (
    <nav class="crumbs" aria-label="Breadcrumb">
      <a href="#/">Jobs</a> <span aria-hidden="true">/</span>{' '}
      {above.map(([href, name]) => (
        <Fragment key={href}>
          <a href={href}>{name}</a> <span aria-hidden="true">/</span>{' '}
        </Fragment>
      ))}
      <span aria-current="page">{current}</span>
    </nav>
  );
}

/** The page's action outcome (notice or alert, dismissible), else the error reading the page's data. */
export function Outcome({ actions, loadError }: { actions: Actions; loadError: ApiError | undefined }) {
  const outcome = useRef<HTMLDivElement>(null);
  // An action started far down the page (a snapshot row's discard) has its outcome up here: brought into view,
  // or a refusal goes unseen (a walkthrough's dialog closed and nothing visible changed).
  // After this render's other effects: a confirmation dialog closing gives the focus back to the row's button,
  // which scrolls the page down to it again.
  useEffect(() => {
    if (!actions.notice && !actions.error) return;
    const timer = setTimeout(() => outcome.current?.scrollIntoView?.({ block: 'nearest' }), 0);
    return () => clearTimeout(timer);
  }, [actions.notice, actions.error]);
  return (
    <div ref={outcome} class="outcome">
      <Notice text={actions.notice} />
      <Alert error={actions.error ?? loadError} onDismiss={actions.error ? actions.dismiss : undefined} />
    </div>
  );
}
