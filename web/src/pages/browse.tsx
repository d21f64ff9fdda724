import { useEffect, useMemo, useState } from 'react'
import { Link, useNavigate, useParams, useSearchParams } from 'react-router-dom'
import { ApiError, newIdempotencyKey, request, type Schemas } from '../api/client'
import { useAuth } from '../auth'
import { dateInZone, dateTimeInZone, dayLabel, formatMoney, slotGrid, zoneAbbreviation } from '../format'
import { Avatar, ErrorBox, Loading, Notice, useLoad, useTitle } from '../ui'

type Doctor = Schemas['Doctor']

export function Home() {
  useTitle('')
  const specs = useLoad((signal) => request<Schemas['SpecialityList']>('/specialities', { signal }), [])
  const docs = useLoad((signal) => request<Schemas['DoctorList']>('/doctors', { query: { available: true }, signal }), [])
  return (
    <>
      <section className="hero">
        <h1>Book an appointment with a trusted doctor</h1>
        <p>Browse doctors by speciality, pick a time that suits you, and pay online or at the clinic.</p>
        <Link to="/doctors" className="btn btn-large">
          Find a doctor
        </Link>
      </section>
      <section className="page" aria-labelledby="spec-heading">
        <h2 id="spec-heading">Find by speciality</h2>
        <ErrorBox error={specs.error} />
        {specs.loading && !specs.data && <Loading />}
        <ul className="specialities">
          {specs.data?.specialities.map((s) => (
            <li key={s.name}>
              <Link to={`/doctors?speciality=${encodeURIComponent(s.name)}`}>
                <span className="spec-name">{s.name}</span>
                <span className="spec-count">
                  {s.doctors} {s.doctors === 1 ? 'doctor' : 'doctors'}
                </span>
              </Link>
            </li>
          ))}
        </ul>
      </section>
      <section className="page" aria-labelledby="top-heading">
        <h2 id="top-heading">Doctors you can book</h2>
        <ErrorBox error={docs.error} />
        <DoctorCards doctors={docs.data?.doctors.slice(0, 8) ?? []} />
      </section>
    </>
  )
}

function DoctorCards({ doctors }: { doctors: Doctor[] }) {
  return (
    <ul className="cards" data-testid="doctor-list">
      {doctors.map((d) => (
        <li key={d.id} className="card">
          <Link to={`/doctors/${d.id}`} className="card-link">
            <Avatar name={d.name} url={d.imageUrl} />
            <span className={d.available ? 'badge ok' : 'badge off'}>{d.available ? 'Available' : 'Not available'}</span>
            <span className="card-title">{d.name}</span>
            <span className="card-sub">{d.speciality}</span>
            <span className="card-sub">{formatMoney(d.fees, d.currency)} a visit</span>
          </Link>
        </li>
      ))}
    </ul>
  )
}

export function DoctorsPage() {
  useTitle('Doctors')
  const [params, setParams] = useSearchParams()
  const speciality = params.get('speciality') ?? ''
  const q = params.get('q') ?? ''
  const [search, setSearch] = useState(q)
  useEffect(() => setSearch(q), [q])
  const specs = useLoad((signal) => request<Schemas['SpecialityList']>('/specialities', { signal }), [])
  const docs = useLoad((signal) => request<Schemas['DoctorList']>('/doctors', { query: { speciality, q }, signal }), [speciality, q])
  const set = (k: string, v: string) => {
    const next = new URLSearchParams(params)
    if (v) next.set(k, v)
    else next.delete(k)
    setParams(next)
  }
  return (
    <section className="page">
      <h1>{speciality ? `${speciality}s` : 'All doctors'}</h1>
      <form
        className="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault()
          set('q', search.trim())
        }}
      >
        <div className="field">
          <label htmlFor="speciality">Speciality</label>
          <select id="speciality" value={speciality} onChange={(e) => set('speciality', e.target.value)}>
            <option value="">All specialities</option>
            {specs.data?.specialities.map((s) => (
              <option key={s.name} value={s.name}>
                {s.name}
              </option>
            ))}
          </select>
        </div>
        <div className="field grow">
          <label htmlFor="q">Search by name</label>
          <input id="q" type="search" value={search} onChange={(e) => setSearch(e.target.value)} placeholder="e.g. Patel" />
        </div>
        <button type="submit" className="btn">
          Search
        </button>
      </form>
      <ErrorBox error={docs.error} />
      {docs.loading && !docs.data ? (
        <Loading what="Loading doctors" />
      ) : docs.data && docs.data.doctors.length === 0 ? (
        <p>No doctor matches. Try another speciality or name.</p>
      ) : (
        <DoctorCards doctors={docs.data?.doctors ?? []} />
      )}
    </section>
  )
}

export function DoctorPage() {
  const { id = '' } = useParams()
  const doc = useLoad((signal) => request<Doctor>(`/doctors/${encodeURIComponent(id)}`, { signal }), [id])
  useTitle(doc.data?.name ?? 'Doctor')
  if (doc.error) {
    return (
      <section className="page">
        <h1>Doctor</h1>
        <ErrorBox error={doc.error} />
      </section>
    )
  }
  if (!doc.data) return <Loading />
  const d = doc.data
  return (
    <section className="page">
      <div className="profile">
        <Avatar name={d.name} url={d.imageUrl} />
        <div>
          <h1>{d.name}</h1>
          <p className="muted">
            {d.degree} · {d.speciality} · {d.experienceYears} {d.experienceYears === 1 ? 'year' : 'years'} of experience
          </p>
          <h2 className="h3">About</h2>
          <p>{d.about}</p>
          <dl className="facts">
            <dt>Fee</dt>
            <dd>{formatMoney(d.fees, d.currency)}</dd>
            <dt>Address</dt>
            <dd>{d.address || '—'}</dd>
            <dt>Time zone</dt>
            <dd>
              {d.timezone} ({zoneAbbreviation(d.timezone)})
            </dd>
          </dl>
        </div>
      </div>
      {d.available ? <Booking doctor={d} /> : <Notice>This doctor is not taking bookings at the moment.</Notice>}
    </section>
  )
}

type Slots = Schemas['SlotsResponse']

/** The doctor's free slots for 7 days from today in the doctor's zone. */
export function useSlots(doctorId: string, zone: string) {
  const from = dateInZone(new Date(), zone)
  return useLoad((signal) => request<Slots>(`/doctors/${encodeURIComponent(doctorId)}/slots`, { query: { from, days: 7 }, signal }), [doctorId, from])
}

/** A 7-day picker of local times; greyed where not free. */
export function SlotPicker({
  slots,
  zone,
  selected,
  onSelect,
}: {
  slots: Slots
  zone: string
  selected: string | null
  onSelect(start: string): void
}) {
  const grid = useMemo(() => slotGrid(slots.days, zone), [slots, zone])
  const firstFree = grid.find((g) => g.slots.some((s) => s.start))?.date ?? grid[0]?.date
  const [day, setDay] = useState(firstFree)
  useEffect(() => {
    if (!grid.some((g) => g.date === day && g.slots.some((s) => s.start))) setDay(firstFree)
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [grid])
  const current = grid.find((g) => g.date === day)
  return (
    <div className="slot-picker">
      <p className="muted">
        Times are in the doctor's time zone: <strong>{zone}</strong> ({zoneAbbreviation(zone)}).
      </p>
      <div className="days" role="group" aria-label="Day">
        {grid.map((g) => {
          const l = dayLabel(g.date)
          const free = g.slots.filter((s) => s.start).length
          return (
            <button
              key={g.date}
              type="button"
              className={g.date === day ? 'day selected' : 'day'}
              aria-pressed={g.date === day}
              onClick={() => setDay(g.date)}
            >
              <span className="day-week">{l.weekday}</span>{' '}
              <span className="day-date">{l.day}</span>{' '}
              <span className="day-free">{free} free</span>
            </button>
          )
        })}
      </div>
      {current && current.slots.length > 0 ? (
        <div className="times" role="group" aria-label={`Times on ${current.date}`}>
          {current.slots.map((s) => (
            <button
              key={s.time}
              type="button"
              className={s.start && s.start === selected ? 'time selected' : 'time'}
              disabled={!s.start}
              aria-pressed={!!s.start && s.start === selected}
              aria-label={s.start ? `${s.time}` : `${s.time}, not available`}
              onClick={() => s.start && onSelect(s.start)}
            >
              {s.time}
            </button>
          ))}
        </div>
      ) : (
        <p>No free time on this day.</p>
      )}
    </div>
  )
}

function Booking({ doctor }: { doctor: Doctor }) {
  const { user } = useAuth()
  const nav = useNavigate()
  const slots = useSlots(doctor.id, doctor.timezone)
  const [selected, setSelected] = useState<string | null>(null)
  // One Idempotency-Key per chosen slot: a double click (or a retry after
  // a lost answer) sends the same key, so it books once.
  const [key, setKey] = useState(newIdempotencyKey)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>()
  const [conflict, setConflict] = useState(false)
  // Starts the server said are taken: never offered again on this page,
  // even by a slot list read before the other booking reached it.
  const [taken, setTaken] = useState<string[]>([])
  const shown = useMemo(
    () => slots.data && { ...slots.data, days: slots.data.days.map((d) => ({ ...d, slots: d.slots.filter((x) => !taken.includes(x.start)) })) },
    [slots.data, taken],
  )

  const choose = (start: string) => {
    setSelected(start)
    setKey(newIdempotencyKey())
    setError(undefined)
  }

  const book = async () => {
    if (!selected) return
    setBusy(true)
    setError(undefined)
    setConflict(false)
    try {
      await request<Schemas['Appointment']>('/appointments', { method: 'POST', body: { doctorId: doctor.id, start: selected }, idempotencyKey: key })
      nav('/my-appointments?booked=1')
    } catch (e) {
      if (e instanceof ApiError && e.status === 409 && e.code === 'slot_unavailable') {
        setConflict(true)
        setTaken((t) => [...t, selected])
        setSelected(null)
        await slots.reload()
      } else {
        setError(e)
      }
    } finally {
      setBusy(false)
    }
  }

  return (
    <section className="booking" aria-labelledby="book-heading">
      <h2 id="book-heading">Book an appointment</h2>
      {conflict && (
        <p className="error" role="alert">
          Sorry — someone booked that time a moment ago. The free times below are up to date; please pick another.
        </p>
      )}
      <ErrorBox error={slots.error} />
      {shown ? <SlotPicker slots={shown} zone={doctor.timezone} selected={selected} onSelect={choose} /> : !slots.error && <Loading what="Loading free times" />}
      <ErrorBox error={error} />
      {error instanceof ApiError && error.code === 'email_unverified' && (
        <p>
          <Link to="/verify-email">Verify your email address</Link>, then book.
        </p>
      )}
      <div className="book-bar">
        {selected && <p>Selected: {dateTimeInZone(selected, doctor.timezone)} ({zoneAbbreviation(doctor.timezone, new Date(selected))})</p>}
        {user?.role === 'patient' ? (
          <button type="button" className="btn btn-large" disabled={!selected || busy} onClick={book}>
            {busy ? 'Booking…' : 'Book appointment'}
          </button>
        ) : user ? (
          <p className="muted">Only patient accounts can book.</p>
        ) : (
          <Link to={`/login?next=${encodeURIComponent(`/doctors/${doctor.id}`)}`} className="btn btn-large">
            Log in to book
          </Link>
        )}
      </div>
    </section>
  )
}
