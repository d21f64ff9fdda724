// Money, dates and times as a patient reads them: always in the doctor's
// zone (the API's instants are UTC; the zone comes with every doctor,
// slot list and appointment).

export function formatMoney(minor: number, currency: string): string {
  try {
    return new Intl.NumberFormat('en-IN', { style: 'currency', currency, minimumFractionDigits: minor % 100 === 0 ? 0 : 2 }).format(minor / 100)
  } catch {
    return `${currency} ${(minor / 100).toFixed(2)}`
  }
}

/** YYYY-MM-DD of instant in zone. */
export function dateInZone(instant: Date, zone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(instant)
}

/** HH:MM (24 h) of an instant in zone. */
export function timeInZone(instant: string | Date, zone: string): string {
  return new Intl.DateTimeFormat('en-GB', { timeZone: zone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(instant))
}

/** "Mon 7 Dec, 10:00" in zone. */
export function dateTimeInZone(instant: string | Date, zone: string): string {
  return new Intl.DateTimeFormat('en-GB', {
    timeZone: zone, weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  }).format(new Date(instant))
}

/** The zone's short name at instant ("IST", "GMT+5:30"). */
export function zoneAbbreviation(zone: string, at: Date = new Date()): string {
  const part = new Intl.DateTimeFormat('en-IN', { timeZone: zone, timeZoneName: 'short' }).formatToParts(at).find((p) => p.type === 'timeZoneName')
  return part?.value ?? zone
}

/** A calendar date (YYYY-MM-DD) as "Mon 7 Dec". */
export function dayLabel(date: string): { weekday: string; day: string } {
  const d = new Date(date + 'T12:00:00Z')
  return {
    weekday: new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', weekday: 'short' }).format(d),
    day: new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', day: 'numeric', month: 'short' }).format(d),
  }
}

export interface GridSlot {
  /** HH:MM in the doctor's zone */
  time: string
  /** the slot's start instant when free, else null (past or taken) */
  start: string | null
}

export interface GridDay {
  date: string
  slots: GridSlot[]
}

/**
 * Lays the free slots of several days on one grid of local times, so the
 * picker can grey out what is not free (past, taken, or notice too short):
 * the rows are every time of day some day has free, stepped by the slot
 * length, from the earliest to the latest.
 */
export function slotGrid(days: { date: string; slots: { start: string; end: string }[] }[], zone: string): GridDay[] {
  const minutes = (t: string) => Number(t.slice(0, 2)) * 60 + Number(t.slice(3, 5))
  let step = 0
  let lo = Infinity
  let hi = -Infinity
  for (const d of days) {
    for (const s of d.slots) {
      const len = Math.round((Date.parse(s.end) - Date.parse(s.start)) / 60000)
      if (len > 0 && (step === 0 || len < step)) step = len
      const m = minutes(timeInZone(s.start, zone))
      lo = Math.min(lo, m)
      hi = Math.max(hi, m)
    }
  }
  const times: string[] = []
  if (step > 0 && Number.isFinite(lo)) {
    for (let m = lo; m <= hi; m += step) {
      times.push(`${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`)
    }
  }
  return days.map((d) => {
    const free = new Map(d.slots.map((s) => [timeInZone(s.start, zone), s.start]))
    const extra = [...free.keys()].filter((t) => !times.includes(t))
    const all = [...times, ...extra].sort()
    return { date: d.date, slots: all.map((time) => ({ time, start: free.get(time) ?? null })) }
  })
}

export const statusLabels: Record<string, string> = {
  held: 'Awaiting payment',
  confirmed: 'Confirmed',
  cancelled: 'Cancelled',
  expired: 'Expired (not paid in time)',
  completed: 'Completed',
  no_show: 'No-show',
}

export const paymentLabels: Record<string, string> = {
  not_required: 'Pay at the clinic',
  pending: 'Payment pending',
  paid: 'Paid online',
  refund_pending: 'Refund on its way',
  refunded: 'Refunded',
  failed: 'Payment failed',
}

/** RFC 5545 text escaping of a property value. */
function icsText(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/([,;])/g, '\\$1')
}

/** Folds a content line at 75 octets (RFC 5545 3.1). */
function fold(line: string): string {
  const out: string[] = []
  let rest = line
  while (new TextEncoder().encode(rest).length > 75) {
    let n = 75
    while (new TextEncoder().encode(rest.slice(0, n)).length > 75) n--
    out.push(rest.slice(0, n))
    rest = ' ' + rest.slice(n)
  }
  out.push(rest)
  return out.join('\r\n')
}

const icsInstant = (iso: string) => new Date(iso).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '')

/**
 * An iCalendar (RFC 5545) file with the appointment as one event, made in
 * the browser from the appointment the API answered (instants in UTC, so
 * every calendar shows it at the right time in its own zone).
 */
export function appointmentICS(
  a: { id: string; doctorName: string; start: string; end: string; timezone: string },
  opts: { address?: string; now?: Date } = {},
): string {
  const lines = [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//Prescripto//Web client//EN',
    'CALSCALE:GREGORIAN',
    'METHOD:PUBLISH',
    'BEGIN:VEVENT',
    `UID:${a.id}@prescripto`,
    `DTSTAMP:${icsInstant((opts.now ?? new Date()).toISOString())}`,
    `DTSTART:${icsInstant(a.start)}`,
    `DTEND:${icsInstant(a.end)}`,
    `SUMMARY:${icsText(`Appointment with ${a.doctorName}`)}`,
    `DESCRIPTION:${icsText(`Booked with Prescripto. Local time at the clinic: ${dateTimeInZone(a.start, a.timezone)} (${a.timezone}).`)}`,
  ]
  if (opts.address) lines.push(`LOCATION:${icsText(opts.address)}`)
  lines.push('END:VEVENT', 'END:VCALENDAR')
  return lines.map(fold).join('\r\n') + '\r\n'
}
