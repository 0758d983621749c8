import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The Java serialization of a SerializedThrowable (Flink's field names and serialVersionUID) of a
 * RuntimeException caused by an IOException, base64, written by JDK 17 from
 * test/fixtures/flink/SerializedThrowable.java; and the first lines of the two stack traces it holds.
 */
export const SERIALIZED_FAILURE = readFileSync(
  join(__dirname, '..', 'fixtures', 'flink', 'serialized-throwable.b64'),
  'utf8',
).trim();
export const SERIALIZED_FAILURE_LINE =
  'java.lang.RuntimeException: Failed to trigger savepoint (taskmanager lost)';
export const SERIALIZED_CAUSE_LINE =
  'java.io.IOException: Permission denied: /data/savepoints/savepoint-a1b2c3-0123456789ab';
