import { AckLog, LayeredMap, rebuildRegistry, type JobState, type SnapshotState } from '../src';

// A job state and a snapshot in which every field holds a value other than its default (decision 0023).
// Typed Required<…>, so a field added to JobState or SnapshotState does not compile until it is given one
// here; the codec tests then fail until `snapshotRecord`, `encodeState` and `decodeState` carry it.

export const FULL_JOB_ID = 'fedcba9876543210fedcba9876543210';
const TASKS = ['source', 'sink'];
const DIR = `file:///data/checkpoints/${FULL_JOB_ID}`;
const HANDLE = { path: `${DIR}/shared/a.sst`, sizeBytes: 1024, shared: true };

export function fullSnapshot(): Required<SnapshotState> {
  return {
    snapshotId: 7,
    kind: 'SAVEPOINT',
    triggerType: 'PERIODIC',
    triggerId: 'trigger-7',
    formatType: 'NATIVE',
    requestedCheckpointType: 'FULL',
    reportedCheckpointType: 'INCREMENTAL',
    jobVersion: '1.4.2',
    flinkVersion: '1.20.0',
    properties: {
      forced: true,
      discardSubsumed: false,
      discardFinished: true,
      discardCancelled: false,
      discardFailed: true,
      discardSuspended: false,
    },
    status: 'COMPLETED',
    persisted: true,
    persistedPath: 'file:///data/savepoints/persisted-7',
    externalPath: `${DIR}/chk-7`,
    expectedTasks: ['source'],
    totalTasks: 2,
    acks: AckLog.of([
      ['source', [HANDLE]],
      ['sink', []],
    ]),
    taskHandles: [['source', [HANDLE]]],
    acknowledged: 2,
    stateSize: 2048,
    checkpointedSize: 1024,
    sharedStateSize: 1024,
    privateStateSize: 1024,
    triggeredAt: 1_795_514_400_000,
    deadline: 1_795_515_000_000,
    completedAt: 1_795_514_460_000,
    failedAt: 1_795_514_470_000,
    failureReason: 'CHECKPOINT_EXPIRED',
    failureMessage: 'expired before completing',
    declinedBy: 'sink',
    subsumedBy: 9,
    discardAwaits: 10,
    discard: {
      cause: 'RETENTION',
      reason: 'older than P7D',
      requestedAt: 1_795_514_480_000,
      state: 'FAILED',
      bytesReclaimed: 512,
      error: 'permission denied',
      retryable: true,
      attempts: 3,
      deleting: [`${DIR}/chk-7`],
    },
    manifestPath: 'file:///data/savepoints/persisted-7/snapcat-manifest.json',
    claimMode: 'CLAIM',
    terminate: { drain: true },
    heldBy: [{ jobId: '0123456789abcdef0123456789abcdef', restore: 2 }],
    externallyAddressable: false,
    flinkCheckpointId: 41,
    standsFor: 6,
    imported: true,
  };
}

export function fullJobState(): Required<JobState> {
  const snapshots = LayeredMap.of([[7, fullSnapshot()]]);
  const strayCleanups = new Map([[2, [`${DIR}/stray`]]]);
  return {
    jobId: FULL_JOB_ID,
    registered: true,
    name: 'orders',
    namespace: 'payments',
    tasks: TASKS,
    status: 'FAILING',
    checkpointing: {
      numRetained: 3,
      timeoutMs: 60_000,
      maxConcurrent: 2,
      minPauseMs: 500,
      tolerableFailures: 4,
      retention: 'RETAIN_ON_FAILURE',
      persistOnFailure: false,
    },
    storage: { checkpointDir: 'file:///data/checkpoints', savepointDir: 'file:///data/savepoints' },
    jobVersion: '1.4.2',
    flinkVersion: '1.20.0',
    nextSnapshotId: 10,
    snapshots,
    triggers: LayeredMap.of([['trigger-7', 7]]),
    pending: new Set([7]),
    completed: [7],
    lastCompletedAt: 1_795_514_460_000,
    counts: { completed: 5, failed: 2, discarded: 1, compacted: 3 },
    finished: [3, 5], // the codec carries the list as it is, without looking the ids up
    sharedState: rebuildRegistry(snapshots.values(), strayCleanups),
    strayCleanups,
    nextCleanupId: 3,
    consecutiveFailures: 1,
    restores: {
      count: 1,
      latest: {
        snapshotId: 6,
        restorePath: `${DIR}/chk-6`,
        checkpointId: 6,
        claimMode: 'NO_CLAIM',
        allowNonRestoredState: true,
        fromJobId: 'f'.repeat(32),
        restoredAt: 1_795_514_000_000,
        firstSnapshotId: 7,
      },
    },
    formerRestoreOwners: [
      {
        jobId: 'e'.repeat(32),
        untilSnapshotId: 5,
        restoredFrom: 'file:///data/savepoints/savepoint-eeeeee-1',
      },
    ],
    fullCheckpointOwed: true,
    source: { type: 'flink', cluster: 'flink-prod' },
    flinkRetention: { externalized: true, deleteOnCancellation: true },
    flinkRestore: {
      flinkCheckpointId: 40,
      snapshotId: 6,
      isSavepoint: false,
      externalPath: `${DIR}/chk-6`,
      restoredAt: 1_795_514_000_000,
    },
    flinkRestoreSources: [`/data/checkpoints/${'c'.repeat(32)}`],
    usersRestoreDirectories: ['/data/imports/nightly'],
    flinkCheckpoints: LayeredMap.of([[41, 7]]),
    flinkCheckpointFloor: 12,
    countedFailures: new Set([8]),
    lastSucceededSnapshotId: 7,
    schedule: { every: 'PT1H', retention: { maxCount: 3 }, formatType: 'NATIVE' },
    lastSlot: 1_795_514_400_000,
    scheduleSince: 1_795_510_000_000,
    registeredAt: 1_795_500_000_000,
    updatedAt: 1_795_514_480_000,
    version: 42,
  };
}
