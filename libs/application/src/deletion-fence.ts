/**
 * Decision 0047: the moment between a deletion's lookup of who references a loose file (decision 0046) and
 * the deletion itself, closed across jobs. A deletion marks the loose files and directories it is about to
 * delete before it asks the read model; an acknowledgement naming loose files reserves them before it checks
 * them and holds the reservation until its events are appended. Each side writes, then reads the other's
 * writes, in one atomic step: whichever comes second sees the first. A deletion that sees a reservation keeps
 * the file; an acknowledgement that sees a mark is refused. Every location is normalised (`normaliseLocation`).
 */
export interface DeletionFence {
  /**
   * Marks `files` and `directories` (every file below each) as being deleted by `jobId`, until released; the
   * answer lists the files among them that another job's acknowledgement has reserved (keep them).
   */
  deleting(jobId: string, files: readonly string[], directories: readonly string[]): Promise<FenceHeld>;
  /**
   * Reserves `files` for an acknowledgement of `jobId`, until released; the answer lists those that another
   * job's deletion has marked, each with the marked place that covers it (the file or a directory above it).
   */
  acknowledging(jobId: string, files: readonly string[]): Promise<FenceHeld>;
}

/** What the other side holds of the locations asked (`conflicts`: location -> the place it is held by). */
export interface FenceHeld {
  conflicts: ReadonlyMap<string, string>;
  /** Lets the locations go (idempotent); kept alive meanwhile, they lapse on their own if the process dies. */
  release(): Promise<void>;
}
