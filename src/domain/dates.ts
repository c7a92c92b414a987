// Strict RFC 3339 date-times: Date.parse alone accepts impossible dates
// (2026-02-30 silently becomes March 2nd), so every field is range-checked
// against the calendar before the text is turned into milliseconds.

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|([+-])(\d{2}):(\d{2}))$/;

function isLeapYear(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

export function daysInMonth(year: number, month: number): number {
  if (month === 2) return isLeapYear(year) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Milliseconds since the epoch, or null when the text is not a real RFC 3339 date-time with a zone. */
export function parseRfc3339Ms(text: string): number | null {
  const m = RFC3339.exec(text);
  if (m === null) return null;
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i]));
  if (month === undefined || month < 1 || month > 12) return null;
  if (day === undefined || day < 1 || day > daysInMonth(year as number, month)) return null;
  // Second 60 (a leap second) is refused: Date cannot represent it.
  if ((hour as number) > 23 || (minute as number) > 59 || (second as number) > 59) return null;
  if (m[8] !== 'Z' && (Number(m[10]) > 23 || Number(m[11]) > 59)) return null;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : null;
}
