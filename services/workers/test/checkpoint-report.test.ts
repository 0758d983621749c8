import { catalogLocation, checkpointReport } from '../src/flink';
import { flinkStats } from './flink-stats';

const stats = flinkStats;

describe("Flink's CheckpointStatistics as the mirror's report (R68)", () => {
  it.each([
    ['NATIVE', true, 'NATIVE'],
    ['CANONICAL', true, 'CANONICAL'],
    [null, true, undefined],
    ['SOMETHING_NEWER', true, undefined],
    // Flink sends null for a checkpoint's; a value there is not a savepoint's format.
    ['NATIVE', false, undefined],
  ] as const)('savepointFormat %s of a savepoint (%s) is reported as %s', (format, isSavepoint, reported) => {
    expect(checkpointReport(stats({ savepointFormat: format, isSavepoint })).savepointFormat).toBe(reported);
  });
});

describe('paths as Flink writes them (`Path.toString()`: `//authority` only when there is one), as catalog locations', () => {
  it.each([
    ['file:/data/sp/savepoint-012345-00000000000a', 'file:///data/sp/savepoint-012345-00000000000a'],
    ['hdfs:/flink/sp/savepoint-012345-00000000000a', 'hdfs:///flink/sp/savepoint-012345-00000000000a'],
    ['viewfs:/cluster/chk/0123', 'viewfs:///cluster/chk/0123'],
    ['hdfs://namenode:8020/flink/sp', 'hdfs://namenode:8020/flink/sp'],
    ['s3://bucket/flink/sp', 's3://bucket/flink/sp'],
    ['file:///data/sp', 'file:///data/sp'],
    ['/data/sp', '/data/sp'],
  ])('%s is %s', (flink, catalog) => {
    expect(catalogLocation(flink)).toBe(catalog);
    expect(checkpointReport(stats({ externalPath: flink })).externalPath).toBe(catalog);
  });
});
