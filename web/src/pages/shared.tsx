// Pieces the doctor's and the admin's pages share.
import { useState } from 'react'
import { newIdempotencyKey, request, type Schemas } from '../api/client'
import { Field, useSubmit } from './account'
import { ErrorBox, Notice } from '../ui'

type Appointment = Schemas['Appointment']
type Schedule = Schemas['ScheduleRequest']

/** Complete, no-show and cancel for a doctor or an admin. */
export function StaffActions({ a, onChanged, onError }: { a: Appointment; onChanged(msg: string): void; onError(e: unknown): void }) {
  const [busy, setBusy] = useState(false)
  const [cancelling, setCancelling] = useState(false)
  const [reason, setReason] = useState('')
  const [key] = useState(newIdempotencyKey)
  if (a.status !== 'confirmed' && a.status !== 'held') return null
  const act = async (path: string, msg: string, body?: unknown) => {
    setBusy(true)
    try {
      await request(`/appointments/${a.id}/${path}`, { method: 'POST', body, idempotencyKey: `${key}-${path}` })
      onChanged(msg)
    } catch (e) {
      onError(e)
    } finally {
      setBusy(false)
    }
  }
  const started = Date.parse(a.start) <= Date.now()
  return (
    <div className="actions">
      {a.status === 'confirmed' && (
        <>
          <button type="button" className="btn" disabled={busy} onClick={() => act('complete', 'Marked completed.')}>
            Complete
          </button>
          <button type="button" className="btn-secondary" disabled={busy || !started} title={started ? undefined : 'Only after the start'} onClick={() => act('no-show', 'Marked as a no-show.')}>
            No-show
          </button>
        </>
      )}
      <button type="button" className="btn-secondary" aria-expanded={cancelling} onClick={() => setCancelling(!cancelling)}>
        Cancel
      </button>
      {cancelling && (
        <form
          className="inline-form"
          onSubmit={(e) => {
            e.preventDefault()
            act('cancel', 'Cancelled; the patient is told.', { reason: reason.trim() })
          }}
        >
          <Field id={`reason-${a.id}`} label="Reason for cancelling">
            <input id={`reason-${a.id}`} required value={reason} onChange={(e) => setReason(e.target.value)} />
          </Field>
          <button type="submit" className="btn-danger" disabled={busy}>
            Cancel appointment
          </button>
        </form>
      )}
    </div>
  )
}

const weekdays = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday']

export const defaultSchedule = (timezone: string): Schedule => ({
  timezone,
  slotMinutes: 30,
  bookingWindowDays: 30,
  minNoticeMinutes: 60,
  paymentPolicy: 'none',
  holdMinutes: 15,
  refundCutoffHours: 24,
  weekly: [1, 2, 3, 4, 5].map((weekday) => ({ weekday, start: '10:00', end: '18:00' })),
})

/** The schedule's fields, controlled by value/onChange. */
export function ScheduleFields({ value, onChange, idPrefix }: { value: Schedule; onChange(s: Schedule): void; idPrefix: string }) {
  const num = (k: 'slotMinutes' | 'bookingWindowDays' | 'minNoticeMinutes' | 'holdMinutes' | 'refundCutoffHours') => ({
    id: `${idPrefix}-${k}`,
    type: 'number',
    min: 0,
    value: value[k] ?? 0,
    onChange: (e: { target: { value: string } }) => onChange({ ...value, [k]: Number(e.target.value) }),
  })
  const day = (wd: number) => value.weekly.find((w) => w.weekday === wd)
  const setDay = (wd: number, h: { start: string; end: string } | null) => {
    const rest = value.weekly.filter((w) => w.weekday !== wd)
    onChange({ ...value, weekly: h ? [...rest, { weekday: wd, ...h }].sort((a, b) => a.weekday - b.weekday) : rest })
  }
  return (
    <>
      <div className="grid2">
        <Field id={`${idPrefix}-timezone`} label="Time zone (IANA)">
          <input id={`${idPrefix}-timezone`} required value={value.timezone} onChange={(e) => onChange({ ...value, timezone: e.target.value })} />
        </Field>
        <Field id={`${idPrefix}-slotMinutes`} label="Slot length (minutes)">
          <input {...num('slotMinutes')} min={5} />
        </Field>
        <Field id={`${idPrefix}-bookingWindowDays`} label="Booking window (days)">
          <input {...num('bookingWindowDays')} min={1} />
        </Field>
        <Field id={`${idPrefix}-minNoticeMinutes`} label="Minimum notice (minutes)">
          <input {...num('minNoticeMinutes')} />
        </Field>
        <Field id={`${idPrefix}-paymentPolicy`} label="Payment">
          <select id={`${idPrefix}-paymentPolicy`} value={value.paymentPolicy} onChange={(e) => onChange({ ...value, paymentPolicy: e.target.value as Schedule['paymentPolicy'] })}>
            <option value="none">At the clinic</option>
            <option value="optional">Online, optional</option>
            <option value="required">Online, required (slot held until paid)</option>
          </select>
        </Field>
        <Field id={`${idPrefix}-holdMinutes`} label="Hold for payment (minutes)">
          <input {...num('holdMinutes')} />
        </Field>
        <Field id={`${idPrefix}-refundCutoffHours`} label="Refund cut-off (hours before)">
          <input {...num('refundCutoffHours')} />
        </Field>
      </div>
      <fieldset className="weekly">
        <legend>Weekly hours</legend>
        {weekdays.map((name, i) => {
          const wd = i + 1
          const h = day(wd)
          return (
            <div key={wd} className="weekly-row">
              <input id={`${idPrefix}-on-${wd}`} type="checkbox" checked={!!h} onChange={(e) => setDay(wd, e.target.checked ? { start: '10:00', end: '18:00' } : null)} />
              <label htmlFor={`${idPrefix}-on-${wd}`} className="weekday">
                {name}
              </label>
              {h && (
                <>
                  <label htmlFor={`${idPrefix}-start-${wd}`} className="sr-only">
                    {name} from
                  </label>
                  <input id={`${idPrefix}-start-${wd}`} type="time" value={h.start} onChange={(e) => setDay(wd, { ...h, start: e.target.value })} />
                  <span aria-hidden="true">–</span>
                  <label htmlFor={`${idPrefix}-end-${wd}`} className="sr-only">
                    {name} until
                  </label>
                  <input id={`${idPrefix}-end-${wd}`} type="time" value={h.end} onChange={(e) => setDay(wd, { ...h, end: e.target.value })} />
                </>
              )}
            </div>
          )
        })}
      </fieldset>
    </>
  )
}

/** A schedule form that PUTs /doctors/{id}/schedule. */
export function ScheduleForm({ doctorId, initial }: { doctorId: string; initial: Schedule }) {
  const [s, setS] = useState(initial)
  const [saved, setSaved] = useState(false)
  const f = useSubmit(async () => {
    setSaved(false)
    await request(`/doctors/${doctorId}/schedule`, { method: 'PUT', body: s })
    setSaved(true)
  })
  return (
    <form className="stack" onSubmit={f.onSubmit} aria-labelledby="sched-h">
      <h2 id="sched-h">Schedule</h2>
      <ScheduleFields value={s} onChange={setS} idPrefix="s" />
      <ErrorBox error={f.error} />
      <Notice>{saved && 'Schedule saved. Patients see the new times at once.'}</Notice>
      <button type="submit" className="btn" disabled={f.busy}>
        Save schedule
      </button>
    </form>
  )
}

/** Time off: from/to in local time of the browser, sent as instants. */
export function TimeOffForm({ doctorId }: { doctorId: string }) {
  const [from, setFrom] = useState('')
  const [to, setTo] = useState('')
  const [reason, setReason] = useState('')
  const [cancelBookings, setCancel] = useState(false)
  const [saved, setSaved] = useState(false)
  const f = useSubmit(async () => {
    setSaved(false)
    await request(`/doctors/${doctorId}/time-off`, {
      method: 'POST',
      body: { from: new Date(from).toISOString(), to: new Date(to).toISOString(), reason: reason.trim(), cancelBookings },
    })
    setSaved(true)
  })
  return (
    <form className="stack" onSubmit={f.onSubmit} aria-labelledby="off-h">
      <h2 id="off-h">Time off</h2>
      <div className="grid2">
        <Field id="off-from" label="From">
          <input id="off-from" type="datetime-local" required value={from} onChange={(e) => setFrom(e.target.value)} />
        </Field>
        <Field id="off-to" label="Until">
          <input id="off-to" type="datetime-local" required value={to} onChange={(e) => setTo(e.target.value)} />
        </Field>
      </div>
      <Field id="off-reason" label="Reason">
        <input id="off-reason" value={reason} onChange={(e) => setReason(e.target.value)} />
      </Field>
      <div className="check">
        <input id="off-cancel" type="checkbox" checked={cancelBookings} onChange={(e) => setCancel(e.target.checked)} />
        <label htmlFor="off-cancel">Cancel the appointments booked in this time (patients are told and refunded)</label>
      </div>
      <ErrorBox error={f.error} />
      <Notice>{saved && 'Time off saved.'}</Notice>
      <button type="submit" className="btn" disabled={f.busy}>
        Add time off
      </button>
    </form>
  )
}
