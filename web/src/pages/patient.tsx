import { useEffect, useRef, useState } from 'react'
import { Link, useSearchParams } from 'react-router-dom'
import { newIdempotencyKey, request, type Schemas } from '../api/client'
import { useAuth } from '../auth'
import { appointmentICS, dateTimeInZone, formatMoney, paymentLabels, statusLabels, zoneAbbreviation } from '../format'
import { ErrorBox, Loading, Notice, useLoad, useTitle } from '../ui'
import { SlotPicker, useSlots } from './browse'
import { Field, useSubmit } from './account'

type Appointment = Schemas['Appointment']
type PaymentOrder = Schemas['PaymentOrder']

const live = (a: Appointment) => a.status === 'held' || a.status === 'confirmed'

export function MyAppointmentsPage() {
  useTitle('My appointments')
  const [params, setParams] = useSearchParams()
  const [notice, setNotice] = useState('')
  const [error, setError] = useState<unknown>()
  const list = useLoad((signal) => request<Schemas['AppointmentList']>('/appointments', { query: { limit: 100 }, signal }), [])
  const verified = useRef(false)

  // Back from the checkout page: the three Razorpay fields in the query.
  useEffect(() => {
    const orderId = params.get('razorpay_order_id')
    const failed = params.get('razorpay_error_reason')
    if (params.get('booked')) setNotice('Your appointment is booked.')
    if (failed) setError('The payment did not go through (' + failed.replace(/_/g, ' ') + '). You can try again.')
    if (!orderId || verified.current) return
    verified.current = true
    request<Appointment>('/payments/razorpay/verify', {
      method: 'POST',
      body: {
        razorpay_order_id: orderId,
        razorpay_payment_id: params.get('razorpay_payment_id') ?? '',
        razorpay_signature: params.get('razorpay_signature') ?? '',
      },
    })
      .then(() => {
        setNotice('Payment received — your appointment is confirmed.')
        setParams({}, { replace: true })
        return list.reload()
      })
      .catch(setError)
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [])

  const now = Date.now()
  const all = list.data?.appointments ?? []
  const upcoming = all.filter((a) => Date.parse(a.start) >= now && live(a)).sort((a, b) => a.start.localeCompare(b.start))
  const past = all.filter((a) => !(Date.parse(a.start) >= now && live(a)))
  // The notice comes with the list that shows the change (read at the
  // command's position), never before it.
  const changed = async (msg: string) => {
    setError(undefined)
    await list.reload()
    setNotice(msg)
  }
  return (
    <section className="page">
      <h1>My appointments</h1>
      <Notice>{notice}</Notice>
      <ErrorBox error={error || list.error} />
      {list.loading && !list.data && <Loading what="Loading your appointments" />}
      <h2>Upcoming</h2>
      {list.data && upcoming.length === 0 && (
        <p>
          Nothing booked. <Link to="/doctors">Find a doctor</Link>.
        </p>
      )}
      <ul className="appointments" data-testid="upcoming">
        {upcoming.map((a) => (
          <AppointmentItem key={a.id} a={a} onChanged={changed} onError={setError} />
        ))}
      </ul>
      <h2>Past and cancelled</h2>
      {list.data && past.length === 0 && <p>None yet.</p>}
      <ul className="appointments" data-testid="past">
        {past.map((a) => (
          <AppointmentItem key={a.id} a={a} onChanged={changed} onError={setError} />
        ))}
      </ul>
    </section>
  )
}

export function AppointmentSummary({ a, who }: { a: Appointment; who: 'doctor' | 'patient' }) {
  return (
    <div className="appt-head">
      <div>
        <p className="appt-name">{who === 'doctor' ? a.doctorName : a.patientName}</p>
        <p>
          <time dateTime={a.start}>{dateTimeInZone(a.start, a.timezone)}</time> {zoneAbbreviation(a.timezone, new Date(a.start))}
        </p>
        <p className="muted">
          {formatMoney(a.fees, a.currency)} · {paymentLabels[a.payment.status] ?? a.payment.status}
          {a.payment.refundedAmount > 0 && ` · ${formatMoney(a.payment.refundedAmount, a.currency)} refunded`}
        </p>
        {a.cancelReason && <p className="muted">Reason: {a.cancelReason}</p>}
      </div>
      <span className={`status status-${a.status}`}>{statusLabels[a.status] ?? a.status}</span>
    </div>
  )
}

function loadRazorpay(): Promise<void> {
  return new Promise((resolve, reject) => {
    if ((window as unknown as { Razorpay?: unknown }).Razorpay) return resolve()
    const s = document.createElement('script')
    s.src = 'https://checkout.razorpay.com/v1/checkout.js'
    s.onload = () => resolve()
    s.onerror = () => reject(new Error('Razorpay Checkout could not be loaded.'))
    document.head.appendChild(s)
  })
}

async function pay(a: Appointment, key: string, onPaid: () => void, onError: (e: unknown) => void) {
  const order = await request<PaymentOrder>(`/appointments/${a.id}/payment`, { method: 'POST', idempotencyKey: key })
  if (order.checkoutUrl) {
    // The sandbox (or any checkout page this server serves) hands the
    // browser back here with the Razorpay fields in the query.
    const sep = order.checkoutUrl.includes('?') ? '&' : '?'
    window.location.assign(order.checkoutUrl + sep + 'return=' + encodeURIComponent('/my-appointments'))
    return
  }
  await loadRazorpay()
  const Razorpay = (window as unknown as { Razorpay: new (o: object) => { open(): void } }).Razorpay
  new Razorpay({
    key: order.keyId,
    order_id: order.orderId,
    amount: order.amount,
    currency: order.currency,
    name: 'Prescripto',
    description: `Appointment with ${a.doctorName}`,
    handler: (r: { razorpay_order_id: string; razorpay_payment_id: string; razorpay_signature: string }) =>
      request('/payments/razorpay/verify', { method: 'POST', body: r }).then(onPaid, onError),
  }).open()
}

function AppointmentItem({ a, onChanged, onError }: { a: Appointment; onChanged(msg: string): Promise<void>; onError(e: unknown): void }) {
  const [mode, setMode] = useState<'' | 'cancel' | 'reschedule'>('')
  const [busy, setBusy] = useState(false)
  const [payKey] = useState(newIdempotencyKey)
  const future = Date.parse(a.start) > Date.now()
  const canPay = live(a) && future && a.payment.status === 'pending'
  const run = async (f: () => Promise<void>) => {
    setBusy(true)
    try {
      await f()
    } catch (e) {
      onError(e)
    } finally {
      setBusy(false)
    }
  }
  // The API has no calendar route: the file is made here from the
  // appointment (and the doctor's address).
  const calendar = () =>
    run(async () => {
      const d = await request<Schemas['Doctor']>(`/doctors/${encodeURIComponent(a.doctorId)}`).catch(() => undefined)
      const blob = new Blob([appointmentICS(a, { address: d?.address })], { type: 'text/calendar' })
      const url = URL.createObjectURL(blob)
      const link = document.createElement('a')
      link.href = url
      link.download = `appointment-${a.start.slice(0, 10)}.ics`
      document.body.appendChild(link)
      link.click()
      link.remove()
      setTimeout(() => URL.revokeObjectURL(url), 1000)
    })
  return (
    <li className="appt" data-status={a.status}>
      <AppointmentSummary a={a} who="doctor" />
      {a.status === 'held' && a.holdExpiresAt && <p className="muted">Pay by {dateTimeInZone(a.holdExpiresAt, a.timezone)} to keep this time.</p>}
      {live(a) && future && (
        <div className="actions">
          {canPay && (
            <button type="button" className="btn" disabled={busy} onClick={() => run(() => pay(a, payKey, () => onChanged('Payment received.'), onError))}>
              Pay online
            </button>
          )}
          <button type="button" className="btn-secondary" aria-expanded={mode === 'reschedule'} onClick={() => setMode(mode === 'reschedule' ? '' : 'reschedule')}>
            Reschedule
          </button>
          <button type="button" className="btn-secondary" aria-expanded={mode === 'cancel'} onClick={() => setMode(mode === 'cancel' ? '' : 'cancel')}>
            Cancel
          </button>
          <button type="button" className="btn-link" disabled={busy} onClick={calendar}>
            Add to calendar
          </button>
        </div>
      )}
      {mode === 'cancel' && <CancelForm id={a.id} onDone={() => { setMode(''); return onChanged('Your appointment is cancelled.') }} />}
      {mode === 'reschedule' && <Reschedule a={a} onDone={() => { setMode(''); return onChanged('Your appointment is moved.') }} />}
    </li>
  )
}

export function CancelForm({ id, onDone }: { id: string; onDone(): Promise<void> }) {
  const [reason, setReason] = useState('')
  const [key] = useState(newIdempotencyKey)
  const f = useSubmit(async () => {
    await request(`/appointments/${id}/cancel`, { method: 'POST', body: { reason: reason.trim() }, idempotencyKey: key })
    await onDone()
  })
  return (
    <form className="inline-form" onSubmit={f.onSubmit}>
      <Field id={`reason-${id}`} label="Reason for cancelling">
        <input id={`reason-${id}`} required maxLength={500} value={reason} onChange={(e) => setReason(e.target.value)} />
      </Field>
      <ErrorBox error={f.error} />
      <button type="submit" className="btn-danger" disabled={f.busy}>
        Cancel appointment
      </button>
    </form>
  )
}

function Reschedule({ a, onDone }: { a: Appointment; onDone(): Promise<void> }) {
  const slots = useSlots(a.doctorId, a.timezone)
  const [selected, setSelected] = useState<string | null>(null)
  const [key, setKey] = useState(newIdempotencyKey)
  const f = useSubmit(async () => {
    if (!selected) return
    try {
      await request(`/appointments/${a.id}/reschedule`, { method: 'POST', body: { start: selected }, idempotencyKey: key })
    } catch (e) {
      await slots.reload()
      throw e
    }
    await onDone()
  })
  return (
    <form className="inline-form" onSubmit={f.onSubmit} aria-label="Pick a new time">
      <ErrorBox error={slots.error} />
      {slots.data ? (
        <SlotPicker slots={slots.data} zone={a.timezone} selected={selected} onSelect={(s) => { setSelected(s); setKey(newIdempotencyKey()) }} />
      ) : (
        <Loading what="Loading free times" />
      )}
      <ErrorBox error={f.error} />
      <button type="submit" className="btn" disabled={!selected || f.busy}>
        Move to {selected ? dateTimeInZone(selected, a.timezone) : 'the chosen time'}
      </button>
    </form>
  )
}

type Me = Schemas['User']

export function ProfilePage() {
  useTitle('My profile')
  const { refresh } = useAuth()
  const me = useLoad((signal) => request<Me>('/me', { signal }), [])
  if (me.error) return <ErrorBox error={me.error} />
  if (!me.data) return <Loading />
  return (
    <section className="page narrow">
      <h1>My profile</h1>
      <p className="muted">
        {me.data.email} · {me.data.emailVerified ? 'email verified' : <Link to="/verify-email">verify your email</Link>}
      </p>
      <ProfileForm me={me.data} onSaved={refresh} />
      <PasswordForm />
    </section>
  )
}

function ProfileForm({ me, onSaved }: { me: Me; onSaved(): Promise<void> }) {
  const [v, setV] = useState({ name: me.name, phone: me.phone ?? '', address: me.address ?? '', gender: me.gender ?? '', dob: me.dob ?? '' })
  const [saved, setSaved] = useState(false)
  const f = useSubmit(async () => {
    setSaved(false)
    const body: Record<string, string> = { name: v.name }
    for (const k of ['phone', 'address', 'gender', 'dob'] as const) if (v[k]) body[k] = v[k]
    await request('/me', { method: 'PATCH', body })
    await onSaved()
    setSaved(true)
  })
  const bind = (k: keyof typeof v) => ({ id: `p-${k}`, value: v[k], onChange: (e: { target: { value: string } }) => setV({ ...v, [k]: e.target.value }) })
  return (
    <form className="stack" onSubmit={f.onSubmit} aria-labelledby="profile-h">
      <h2 id="profile-h">Details</h2>
      <Field id="p-name" label="Full name">
        <input {...bind('name')} required autoComplete="name" />
      </Field>
      <Field id="p-phone" label="Phone">
        <input {...bind('phone')} type="tel" autoComplete="tel" />
      </Field>
      <Field id="p-address" label="Address">
        <input {...bind('address')} autoComplete="street-address" />
      </Field>
      <Field id="p-gender" label="Gender">
        <select {...bind('gender')}>
          <option value="">Not said</option>
          <option value="female">Female</option>
          <option value="male">Male</option>
          <option value="other">Other</option>
        </select>
      </Field>
      <Field id="p-dob" label="Date of birth">
        <input {...bind('dob')} type="date" />
      </Field>
      <ErrorBox error={f.error} />
      <Notice>{saved && 'Saved.'}</Notice>
      <button type="submit" className="btn" disabled={f.busy}>
        Save
      </button>
    </form>
  )
}

function PasswordForm() {
  const { token, user, signIn } = useAuth()
  const [cur, setCur] = useState('')
  const [next, setNext] = useState('')
  const [done, setDone] = useState(false)
  const f = useSubmit(async () => {
    const r = await request<{ token: string }>('/me/password', { method: 'POST', body: { currentPassword: cur, newPassword: next } })
    if (r?.token && user) signIn(r.token, user)
    else if (token && user) signIn(token, user)
    setCur('')
    setNext('')
    setDone(true)
  })
  return (
    <form className="stack" onSubmit={f.onSubmit} aria-labelledby="pw-h">
      <h2 id="pw-h">Change password</h2>
      <Field id="pw-current" label="Current password">
        <input id="pw-current" type="password" autoComplete="current-password" required value={cur} onChange={(e) => setCur(e.target.value)} />
      </Field>
      <Field id="pw-new" label="New password">
        <input id="pw-new" type="password" autoComplete="new-password" required minLength={8} value={next} onChange={(e) => setNext(e.target.value)} />
      </Field>
      <ErrorBox error={f.error} />
      <Notice>{done && 'Your password is changed; other sessions are logged out.'}</Notice>
      <button type="submit" className="btn" disabled={f.busy}>
        Change password
      </button>
    </form>
  )
}
