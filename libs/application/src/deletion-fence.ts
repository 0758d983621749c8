/**
 * Decision 0047: the moment between a deletion's lookup of who uses a place (decisions 0043, 0046) and the
 * deletion itself, closed across jobs. A deletion marks the loose files and the imported directories it is
 * about to delete before it asks the read model; an acknowledgement naming loose files, or an import, reserves
 * what it names before it checks it, and holds the reservation until its events are appended. Each side
 * writes, then reads the other's writes, in one atomic step: whichever comes second sees the first. A deletion
 * that sees a reservation keeps it; an acknowledgement or an import that sees a mark is refused. Places are
 * normalised locations (`normaliseLocation`), files and directories alike: two places meet when one is, or
 * lies in, the other.
 */
export interface DeletionFence {
  /** Marks `places` as being deleted by `jobId`, until released; the answer: the other jobs' reservations met. */
  deleting(jobId: string, places: readonly string[]): Promise<FenceHeld>;
  /** Reserves `places` for an acknowledgement or an import of `jobId`, until released; the answer: the marks met. */
  recording(jobId: string, places: readonly string[]): Promise<FenceHeld>;
}

/** What the other side holds where the places asked lie. */
export interface FenceHeld {
  /**
   * Each place asked that meets other jobs' places, with every one of them (the same place, one it lies in,
   * or ones inside it).
   */
  conflicts: ReadonlyMap<string, readonly string[]>;
  /**
   * Whether every place is still held (renewing them): false once one lapsed or was lost (a Redis that
   * restarted empty), when a recording may have passed unseen. A deletion asks it just before it deletes.
   */
  stillHeld(): Promise<boolean>;
  /** Lets `places` (all by default) go; kept alive meanwhile, they lapse on their own if the process dies. */
  release(places?: readonly string[]): Promise<void>;
  /**
   * Stops renewing, leaving the places to lapse: for a recording whose append may still land (a store that
   * did not answer in time), which must stay visible to deletions until it has.
   */
  abandon(): void;
}
