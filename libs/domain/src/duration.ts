/** ISO-8601 durations of fixed length: weeks, days, hours, minutes, seconds (no years or months). */
const PATTERN = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

export function isIsoDuration(text: string): boolean {
  const match = PATTERN.exec(text);
  return match !== null && match.slice(1).some((part) => part !== undefined) && !text.endsWith('T');
}

/**
 * The durations parsed so far: a job's schedule and timeouts are a handful of texts read on every firing and
 * trigger (two regular expression runs each, 2 % of a firing's CPU in bench #9). Short texts only, at most
 * PARSED_KEPT of them (cleared past that): a request's text reaches here even when it is too long for its
 * schema (zod runs the refinement anyway), and must not be kept.
 */
const parsed = new Map<string, number>();
const PARSED_KEPT = 1000;
const PARSED_LENGTH = 32;

/** Milliseconds of an ISO-8601 duration such as PT2S, PT1H30M or P7D. */
export function durationMs(text: string): number {
  const known = parsed.get(text);
  if (known !== undefined) return known;
  const match = PATTERN.exec(text);
  if (!match || !isIsoDuration(text)) throw new Error(`not an ISO-8601 duration: ${text}`);
  const [, weeks, days, hours, minutes, seconds] = match.map((part) =>
    part === undefined ? 0 : Number(part),
  );
  const ms = Math.round(((((weeks! * 7 + days!) * 24 + hours!) * 60 + minutes!) * 60 + seconds!) * 1000);
  if (text.length <= PARSED_LENGTH) {
    if (parsed.size >= PARSED_KEPT) parsed.clear();
    parsed.set(text, ms);
  }
  return ms;
}
