// A job's (or one snapshot's) events, oldest first as the event log holds them.
import type { PagedList } from './lists';
import { actorOf, eventSummary, type HistoryEvent } from './queries';
import { snapshotHref } from './route';
import { Alert, Instant, Loading, More, TableWrap } from './ui';

export function HistoryTable(props: {
  jobId: string;
  list: PagedList<HistoryEvent>;
  now: number;
  caption: string;
  showSnapshot: boolean;
}) {
  const { list, now, jobId } = props;
  return (
    <>
      <Alert error={list.error} />
      {!list.loaded && !list.error && <Loading what="events" />}
      {list.loaded && (
        <TableWrap label={props.caption}>
          <table data-testid="history" class="data">
            <caption>
              {props.caption} <span class="muted">(oldest first)</span>
            </caption>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Event</th>
                {props.showSnapshot && <th scope="col">Snapshot</th>}
                <th scope="col">Actor</th>
                <th scope="col">Details</th>
              </tr>
            </thead>
            <tbody>
              {list.items.length === 0 && (
                <tr>
                  <td colSpan={props.showSnapshot ? 5 : 4} class="muted">
                    No events.
                  </td>
                </tr>
              )}
              {list.items.map((event) => (
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
              ))}
            </tbody>
          </table>
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
    </>
  );
}
