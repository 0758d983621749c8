/** ISO-8601 durations of fixed length: weeks, days, hours, minutes, seconds (no years or months). */
const PATTERN = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

export function isIsoDuration(text: string): boolean {
  const match = PATTERN.exec(text);
  return match !== null && match.slice(1).some((part) => part !== undefined) && !text.endsWith('T');
}

/** Milliseconds of an ISO-8601 duration such as PT2S, PT1H30M or P7D. */
export function durationMs(text: string): number {
  const match = PATTERN.exec(text);
  if (!match || !isIsoDuration(text)) throw new Error(`not an ISO-8601 duration: ${text}`);
  const [, weeks, days, hours, minutes, seconds] = match.map((part) =>
    part === undefined ? 0 : Number(part),
  );
  return Math.round(((((weeks! * 7 + days!) * 24 + hours!) * 60 + minutes!) * 60 + seconds!) * 1000);
}
