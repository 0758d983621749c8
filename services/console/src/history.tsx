// A job's (or one snapshot's) events, newest first: what was done lately, however long the log.
import { type PagedList, usePagedList } from './lists';
import { actorOf, type Connection, eventSummary, HISTORY, type HistoryEvent } from './queries';
import { snapshotHref } from './route';
import { gql } from './session';
import { Alert, DataTable, Instant, Loading, More, TableWrap } from './ui';

/** The events of a job, or of one of its snapshots (`snapshotId`), read `pageSize` at a time. */
export function useHistory(jobId: string, snapshotId: number | undefined, pageSize: number) {
  return usePagedList<HistoryEvent>(
    async (first, after, signal) =>
      (await gql<{ history: Connection<HistoryEvent> }>(HISTORY, { jobId, snapshotId, first, after }, signal))
        .history,
    pageSize,
    [jobId, snapshotId],
  );
}

/** The page's History section: the events' table and "Load more". */
export function HistorySection(props: {
  jobId: string;
  list: PagedList<HistoryEvent>;
  now: number;
  caption: string;
  showSnapshot: boolean;
}) {
  const { list, now, jobId } = props;
  return (
    <section aria-labelledby="history-title">
      <h2 id="history-title">History</h2>
      <Alert error={list.error} />
      {!list.loaded && !list.error && <Loading what="events" />}
      {list.loaded && (
        <TableWrap label={props.caption}>
          <DataTable
            testid="history"
            caption={
              <>
                {props.caption} <span class="muted">(newest first)</span>
              </>
            }
            columns={['Time', 'Event', props.showSnapshot && 'Snapshot', 'Actor', 'Details']}
            items={list.items}
            empty="No events."
            row={(event) => (
              <tr key={event.eventId} data-event-type={event.type}>
                <td class="nowrap">
                  <Instant iso={event.occurredAt} now={now} />
                </td>
                <td>{event.type}</td>
                {props.showSnapshot && (
                  <td>
                    {event.snapshotId === null ? (
                      <span class="muted">—</span>
                    ) : (
                      <a href={snapshotHref(jobId, event.snapshotId)}>{event.snapshotId}</a>
                    )}
                  </td>
                )}
                <td>{actorOf(event) ?? <span class="muted">—</span>}</td>
                <td class="details">{eventSummary(event)}</td>
              </tr>
            )}
          />
        </TableWrap>
      )}
      <More
        shown={list.items.length}
        hasMore={list.hasMore}
        loading={list.loading && list.loaded}
        testid="more-history"
        label="Load more events"
        onMore={list.more}
      />
    </section>
  );
}
