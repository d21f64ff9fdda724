import { useState } from 'react'
import { Route, Routes } from 'react-router-dom'
import { request, type Schemas } from '../api/client'
import { useAuth } from '../auth'
import { dateInZone, formatMoney } from '../format'
import { ErrorBox, Loading, Notice, useLoad, useTitle } from '../ui'
import { Field, useSubmit } from './account'
import { AppointmentSummary } from './patient'
import { defaultSchedule, ScheduleForm, StaffActions, TimeOffForm } from './shared'

type Appointment = Schemas['Appointment']
type Doctor = Schemas['Doctor']

export default function DoctorArea() {
  return (
    <Routes>
      <Route index element={<MyDay />} />
      <Route path="schedule" element={<SchedulePage />} />
      <Route path="profile" element={<DoctorProfilePage />} />
    </Routes>
  )
}

function useMyDoctor() {
  const { user } = useAuth()
  const id = user?.doctorId ?? ''
  return useLoad((signal) => (id ? request<Doctor>(`/doctors/${id}`, { signal }) : Promise.reject(new Error('This account is not linked to a doctor.'))), [id])
}

function MyDay() {
  useTitle('My day')
  const dash = useLoad((signal) => request<Schemas['DoctorDashboard']>('/doctor/dashboard', { signal }), [])
  const list = useLoad((signal) => request<Schemas['AppointmentList']>('/appointments', { query: { limit: 200 }, signal }), [])
  const [notice, setNotice] = useState('')
  const [error, setError] = useState<unknown>()
  const all = list.data?.appointments ?? []
  const zone = all[0]?.timezone ?? 'UTC'
  const today = dateInZone(new Date(), zone)
  const open = (a: Appointment) => a.status === 'confirmed' || a.status === 'held'
  const todays = all.filter((a) => dateInZone(new Date(a.start), a.timezone) === today).sort((a, b) => a.start.localeCompare(b.start))
  const upcoming = all.filter((a) => open(a) && dateInZone(new Date(a.start), a.timezone) > today).sort((a, b) => a.start.localeCompare(b.start))
  const past = all.filter((a) => !todays.includes(a) && !upcoming.includes(a))
  const changed = (msg: string) => {
    setNotice(msg)
    setError(undefined)
    list.reload()
    dash.reload()
  }
  const section = (title: string, items: Appointment[], testid: string) => (
    <>
      <h2>{title}</h2>
      {list.data && items.length === 0 && <p>None.</p>}
      <ul className="appointments" data-testid={testid}>
        {items.map((a) => (
          <li key={a.id} className="appt" data-status={a.status}>
            <AppointmentSummary a={a} who="patient" />
            <StaffActions a={a} onChanged={changed} onError={setError} />
          </li>
        ))}
      </ul>
    </>
  )
  return (
    <section className="page">
      <h1>My day</h1>
      <ErrorBox error={dash.error} />
      {dash.data && (
        <div className="stats">
          <div className="stat">
            <span className="stat-value">{formatMoney(dash.data.earnings, dash.data.currency ?? 'INR')}</span>
            <span className="stat-label">Earnings</span>
          </div>
          <div className="stat">
            <span className="stat-value">{dash.data.appointments}</span>
            <span className="stat-label">Appointments</span>
          </div>
          <div className="stat">
            <span className="stat-value">{dash.data.patients}</span>
            <span className="stat-label">Patients</span>
          </div>
        </div>
      )}
      <Notice>{notice}</Notice>
      <ErrorBox error={error || list.error} />
      {list.loading && !list.data && <Loading />}
      {section('Today', todays, 'today')}
      {section('Upcoming', upcoming, 'upcoming')}
      {section('Earlier', past.slice(0, 30), 'past')}
    </section>
  )
}

function SchedulePage() {
  useTitle('Schedule')
  const doc = useMyDoctor()
  if (doc.error) return <ErrorBox error={doc.error} />
  if (!doc.data) return <Loading />
  return (
    <section className="page narrow">
      <h1>Schedule and time off</h1>
      <p className="muted">Saving replaces your whole weekly schedule; booked appointments stay.</p>
      <ScheduleForm doctorId={doc.data.id} initial={defaultSchedule(doc.data.timezone)} />
      <TimeOffForm doctorId={doc.data.id} />
    </section>
  )
}

function DoctorProfilePage() {
  useTitle('Profile')
  const doc = useMyDoctor()
  if (doc.error) return <ErrorBox error={doc.error} />
  if (!doc.data) return <Loading />
  return <DoctorProfileForm d={doc.data} />
}

function DoctorProfileForm({ d }: { d: Doctor }) {
  const [fees, setFees] = useState(String(d.fees / 100))
  const [address, setAddress] = useState(d.address)
  const [about, setAbout] = useState(d.about)
  const [available, setAvailable] = useState(d.available)
  const [saved, setSaved] = useState(false)
  const f = useSubmit(async () => {
    setSaved(false)
    await request('/doctor/profile', { method: 'PATCH', body: { fees: Math.round(Number(fees) * 100), address, about, available } })
    setSaved(true)
  })
  return (
    <section className="page narrow">
      <h1>{d.name}</h1>
      <p className="muted">
        {d.degree} · {d.speciality}
      </p>
      <form className="stack" onSubmit={f.onSubmit}>
        <Field id="fees" label={`Fee (${d.currency})`}>
          <input id="fees" type="number" min={0} step="0.01" required value={fees} onChange={(e) => setFees(e.target.value)} />
        </Field>
        <Field id="address" label="Address">
          <input id="address" value={address} onChange={(e) => setAddress(e.target.value)} />
        </Field>
        <Field id="about" label="About">
          <textarea id="about" rows={4} value={about} onChange={(e) => setAbout(e.target.value)} />
        </Field>
        <div className="check">
          <input id="available" type="checkbox" checked={available} onChange={(e) => setAvailable(e.target.checked)} />
          <label htmlFor="available">Taking bookings</label>
        </div>
        <ErrorBox error={f.error} />
        <Notice>{saved && 'Saved.'}</Notice>
        <button type="submit" className="btn" disabled={f.busy}>
          Save
        </button>
      </form>
    </section>
  )
}
