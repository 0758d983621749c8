/** ISO-8601 durations of fixed length: weeks, days, hours, minutes, seconds (no years or months). */
const PATTERN = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

export function isIsoDuration(text: string): boolean {
  const m = PATTERN.exec(text);
  return m !== null && m.slice(1).some((part) => part !== undefined) && !text.endsWith('T');
}

/** Milliseconds of an ISO-8601 duration such as PT2S, PT1H30M or P7D. */
export function durationMs(text: string): number {
  const m = PATTERN.exec(text);
  if (!m || !isIsoDuration(text)) throw new Error(`not an ISO-8601 duration: ${text}`);
  const [, w, d, h, min, s] = m.map((part) => (part === undefined ? 0 : Number(part)));
  return Math.round(((((w! * 7 + d!) * 24 + h!) * 60 + min!) * 60 + s!) * 1000);
}
