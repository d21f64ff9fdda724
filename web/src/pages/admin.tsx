import { useState } from 'react'
import { Link, Route, Routes, useNavigate, useSearchParams } from 'react-router-dom'
import { request, type Schemas } from '../api/client'
import { dateTimeInZone, formatMoney, paymentLabels, statusLabels } from '../format'
import { Avatar, ErrorBox, Loading, Notice, useLoad, useTitle } from '../ui'
import { Field, useSubmit } from './account'
import { AppointmentSummary } from './patient'
import { defaultSchedule, ScheduleFields, StaffActions } from './shared'

type Appointment = Schemas['Appointment']
type Doctor = Schemas['Doctor']

export default function AdminArea() {
  return (
    <Routes>
      <Route index element={<Dashboard />} />
      <Route path="doctors" element={<DoctorsAdmin />} />
      <Route path="doctors/new" element={<AddDoctor />} />
      <Route path="appointments" element={<AppointmentsAdmin />} />
      <Route path="payments" element={<PaymentsAdmin />} />
      <Route path="system" element={<SystemAdmin />} />
    </Routes>
  )
}

function Dashboard() {
  useTitle('Dashboard')
  const d = useLoad((signal) => request<Schemas['AdminDashboard']>('/admin/dashboard', { signal }), [])
  return (
    <section className="page">
      <h1>Dashboard</h1>
      <ErrorBox error={d.error} />
      {!d.data && !d.error && <Loading />}
      {d.data && (
        <>
          <div className="stats">
            <Link className="stat" to="/admin/doctors">
              <span className="stat-value">{d.data.doctors}</span>
              <span className="stat-label">Doctors</span>
            </Link>
            <Link className="stat" to="/admin/appointments">
              <span className="stat-value">{d.data.appointments}</span>
              <span className="stat-label">Appointments</span>
            </Link>
            <div className="stat">
              <span className="stat-value">{d.data.patients}</span>
              <span className="stat-label">Patients</span>
            </div>
          </div>
          <h2>Latest bookings</h2>
          {d.data.latest.length === 0 && <p>None yet.</p>}
          <ul className="appointments">
            {d.data.latest.map((a) => (
              <li key={a.id} className="appt">
                <AppointmentSummary a={a} who="doctor" />
                <p className="muted">Patient: {a.patientName}</p>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  )
}

function DoctorsAdmin() {
  useTitle('Doctors')
  const docs = useLoad((signal) => request<Schemas['DoctorList']>('/doctors', { signal }), [])
  const [error, setError] = useState<unknown>()
  const [busy, setBusy] = useState('')
  const toggle = async (d: Doctor) => {
    setBusy(d.id)
    setError(undefined)
    try {
      await request(`/admin/doctors/${d.id}`, { method: 'PATCH', body: { available: !d.available } })
      await docs.reload()
    } catch (e) {
      setError(e)
    } finally {
      setBusy('')
    }
  }
  return (
    <section className="page">
      <div className="title-row">
        <h1>Doctors</h1>
        <Link to="/admin/doctors/new" className="btn">
          Add doctor
        </Link>
      </div>
      <ErrorBox error={error || docs.error} />
      {!docs.data && !docs.error && <Loading />}
      <div className="table-wrap" tabIndex={0} role="region" aria-label="Doctors table">
        <table>
          <thead>
            <tr>
              <th scope="col">Doctor</th>
              <th scope="col">Speciality</th>
              <th scope="col">Fee</th>
              <th scope="col">Available</th>
            </tr>
          </thead>
          <tbody>
            {docs.data?.doctors.map((d) => (
              <tr key={d.id}>
                <td>
                  <span className="cell-doctor">
                    <Avatar name={d.name} url={d.imageUrl} /> <Link to={`/doctors/${d.id}`}>{d.name}</Link>
                  </span>
                </td>
                <td>{d.speciality}</td>
                <td>{formatMoney(d.fees, d.currency)}</td>
                <td>
                  <input type="checkbox" id={`avail-${d.id}`} checked={d.available} disabled={busy === d.id} onChange={() => toggle(d)} />
                  <label htmlFor={`avail-${d.id}`} className="sr-only">
                    {d.name} is available
                  </label>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  )
}

function AddDoctor() {
  useTitle('Add doctor')
  const nav = useNavigate()
  const [v, setV] = useState({
    name: '', email: '', password: '', speciality: 'General physician', degree: 'MBBS', experienceYears: '1', about: '', fees: '500', currency: 'INR', address: '', imageUrl: '',
  })
  const [schedule, setSchedule] = useState(defaultSchedule('Asia/Kolkata'))
  const f = useSubmit(async () => {
    const d = await request<Doctor>('/admin/doctors', {
      method: 'POST',
      body: {
        name: v.name, email: v.email, password: v.password, speciality: v.speciality, degree: v.degree, experienceYears: Number(v.experienceYears),
        about: v.about, fees: Math.round(Number(v.fees) * 100), currency: v.currency, address: v.address, imageUrl: v.imageUrl || undefined, timezone: schedule.timezone,
      },
    })
    await request(`/doctors/${d.id}/schedule`, { method: 'PUT', body: schedule })
    nav(`/doctors/${d.id}`)
  })
  const bind = (k: keyof typeof v) => ({ id: `d-${k}`, value: v[k], onChange: (e: { target: { value: string } }) => setV({ ...v, [k]: e.target.value }) })
  return (
    <section className="page narrow">
      <h1>Add doctor</h1>
      <form className="stack" onSubmit={f.onSubmit}>
        <div className="grid2">
          <Field id="d-name" label="Name">
            <input {...bind('name')} required placeholder="Dr. …" />
          </Field>
          <Field id="d-email" label="Login email">
            <input {...bind('email')} type="email" required autoComplete="off" />
          </Field>
          <Field id="d-password" label="First password">
            <input {...bind('password')} type="password" required minLength={8} autoComplete="new-password" />
          </Field>
          <Field id="d-speciality" label="Speciality">
            <input {...bind('speciality')} required list="specialities" />
          </Field>
          <Field id="d-degree" label="Degree">
            <input {...bind('degree')} />
          </Field>
          <Field id="d-experienceYears" label="Experience (years)">
            <input {...bind('experienceYears')} type="number" min={0} />
          </Field>
          <Field id="d-fees" label="Fee">
            <input {...bind('fees')} type="number" min={0} step="0.01" required />
          </Field>
          <Field id="d-currency" label="Currency">
            <input {...bind('currency')} required maxLength={3} />
          </Field>
          <Field id="d-address" label="Address">
            <input {...bind('address')} />
          </Field>
          <Field id="d-imageUrl" label="Photo URL (https)">
            <input {...bind('imageUrl')} type="url" />
          </Field>
        </div>
        <datalist id="specialities">
          {['General physician', 'Gynecologist', 'Dermatologist', 'Pediatricians', 'Neurologist', 'Gastroenterologist'].map((s) => (
            <option key={s} value={s} />
          ))}
        </datalist>
        <Field id="d-about" label="About">
          <textarea {...bind('about')} rows={3} />
        </Field>
        <ScheduleFields value={schedule} onChange={setSchedule} idPrefix="ds" />
        <ErrorBox error={f.error} />
        <button type="submit" className="btn" disabled={f.busy}>
          {f.busy ? 'Adding…' : 'Add doctor'}
        </button>
      </form>
    </section>
  )
}

function AppointmentsAdmin() {
  useTitle('Appointments')
  const [params, setParams] = useSearchParams()
  const status = params.get('status') ?? ''
  const from = params.get('from') ?? ''
  const to = params.get('to') ?? ''
  const [notice, setNotice] = useState('')
  const [error, setError] = useState<unknown>()
  const list = useLoad(
    (signal) =>
      request<Schemas['AppointmentList']>('/appointments', {
        query: { status, from: from ? new Date(from + 'T00:00:00').toISOString() : '', to: to ? new Date(to + 'T23:59:59').toISOString() : '', limit: 100 },
        signal,
      }),
    [status, from, to],
  )
  const set = (k: string, val: string) => {
    const next = new URLSearchParams(params)
    if (val) next.set(k, val)
    else next.delete(k)
    setParams(next)
  }
  return (
    <section className="page">
      <h1>All appointments</h1>
      <form className="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filters">
        <Field id="f-status" label="Status">
          <select id="f-status" value={status} onChange={(e) => set('status', e.target.value)}>
            <option value="">Any</option>
            {Object.entries(statusLabels).map(([k, l]) => (
              <option key={k} value={k}>
                {l}
              </option>
            ))}
          </select>
        </Field>
        <Field id="f-from" label="From">
          <input id="f-from" type="date" value={from} onChange={(e) => set('from', e.target.value)} />
        </Field>
        <Field id="f-to" label="To">
          <input id="f-to" type="date" value={to} onChange={(e) => set('to', e.target.value)} />
        </Field>
      </form>
      <Notice>{notice}</Notice>
      <ErrorBox error={error || list.error} />
      {list.loading && !list.data && <Loading />}
      {list.data?.appointments.length === 0 && <p>No appointment matches.</p>}
      <ul className="appointments">
        {list.data?.appointments.map((a: Appointment) => (
          <li key={a.id} className="appt" data-status={a.status}>
            <AppointmentSummary a={a} who="doctor" />
            <p className="muted">Patient: {a.patientName}</p>
            <StaffActions a={a} onChanged={(m) => { setNotice(m); list.reload() }} onError={setError} />
          </li>
        ))}
      </ul>
    </section>
  )
}

function PaymentsAdmin() {
  useTitle('Payments')
  const [status, setStatus] = useState('')
  const list = useLoad((signal) => request<Schemas['PaymentList']>('/admin/payments', { query: { status }, signal }), [status])
  return (
    <section className="page">
      <h1>Payments</h1>
      <form className="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filters">
        <Field id="pay-status" label="Status">
          <select id="pay-status" value={status} onChange={(e) => setStatus(e.target.value)}>
            <option value="">Any</option>
            {Object.entries(paymentLabels)
              .filter(([k]) => k !== 'not_required')
              .map(([k, l]) => (
                <option key={k} value={k}>
                  {l}
                </option>
              ))}
          </select>
        </Field>
      </form>
      <ErrorBox error={list.error} />
      {list.loading && !list.data && <Loading />}
      {list.data?.payments.length === 0 && <p>No payments.</p>}
      {!!list.data?.payments.length && (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Payments table">
          <table>
            <thead>
              <tr>
                <th scope="col">Order</th>
                <th scope="col">Status</th>
                <th scope="col">Amount</th>
                <th scope="col">Refunded</th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {list.data.payments.map((p) => (
                <tr key={p.orderId}>
                  <td>
                    <code>{p.orderId}</code>
                  </td>
                  <td>{paymentLabels[p.status] ?? p.status}</td>
                  <td>{formatMoney(p.amount, p.currency)}</td>
                  <td>{formatMoney(p.refundedAmount, p.currency)}</td>
                  <td>{dateTimeInZone(p.updatedAt, Intl.DateTimeFormat().resolvedOptions().timeZone)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  )
}

function SystemAdmin() {
  useTitle('System')
  const proj = useLoad((signal) => request<Schemas['ProjectionList']>('/admin/projections', { signal }), [])
  const [notice, setNotice] = useState('')
  const [error, setError] = useState<unknown>()
  const rebuild = async (name: string) => {
    try {
      await request(`/admin/projections/${encodeURIComponent(name)}/rebuild`, { method: 'POST' })
      setNotice(`Rebuilding ${name}; reads keep working meanwhile.`)
      setTimeout(() => proj.reload(), 1000)
    } catch (e) {
      setError(e)
    }
  }
  return (
    <section className="page">
      <h1>System</h1>
      <h2>Read models</h2>
      <Notice>{notice}</Notice>
      <ErrorBox error={error || proj.error} />
      <div className="table-wrap" tabIndex={0} role="region" aria-label="Read models table">
        <table>
          <thead>
            <tr>
              <th scope="col">Projection</th>
              <th scope="col">Position</th>
              <th scope="col">Lag</th>
              <th scope="col">Status</th>
              <th scope="col">
                <span className="sr-only">Action</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {proj.data?.projections.map((p) => (
              <tr key={p.name}>
                <td>{p.name}</td>
                <td>{p.position}</td>
                <td>{p.lag}</td>
                <td>{p.status}</td>
                <td>
                  <button type="button" className="btn-secondary" onClick={() => rebuild(p.name)} aria-label={`Rebuild ${p.name}`}>
                    Rebuild
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <StaffForm />
    </section>
  )
}

function StaffForm() {
  const [v, setV] = useState({ name: '', email: '', password: '', role: 'auditor' })
  const [done, setDone] = useState('')
  const f = useSubmit(async () => {
    await request('/admin/users', { method: 'POST', body: v })
    setDone(`${v.email} can log in now as ${v.role}.`)
    setV({ name: '', email: '', password: '', role: 'auditor' })
  })
  const bind = (k: keyof typeof v) => ({ id: `st-${k}`, value: v[k], onChange: (e: { target: { value: string } }) => setV({ ...v, [k]: e.target.value }) })
  return (
    <form className="stack narrow" onSubmit={f.onSubmit} aria-labelledby="staff-h">
      <h2 id="staff-h">Staff accounts</h2>
      <Field id="st-name" label="Name">
        <input {...bind('name')} required />
      </Field>
      <Field id="st-email" label="Email">
        <input {...bind('email')} type="email" required autoComplete="off" />
      </Field>
      <Field id="st-password" label="First password">
        <input {...bind('password')} type="password" required minLength={8} autoComplete="new-password" />
      </Field>
      <Field id="st-role" label="Role">
        <select {...bind('role')}>
          <option value="auditor">Auditor</option>
          <option value="analyst">Analyst</option>
          <option value="admin">Admin</option>
        </select>
      </Field>
      <ErrorBox error={f.error} />
      <Notice>{done}</Notice>
      <button type="submit" className="btn" disabled={f.busy}>
        Create staff account
      </button>
    </form>
  )
}
