import { lazy, Suspense, useEffect, useRef, useState, type ReactNode } from 'react'
import { Link, Navigate, NavLink, Route, Routes, useLocation } from 'react-router-dom'
import { useAuth } from './auth'
import { Loading } from './ui'
import { Home, DoctorsPage, DoctorPage } from './pages/browse'
import { LoginPage, RegisterPage, VerifyEmailPage, ForgotPasswordPage, ResetPasswordPage } from './pages/account'
import { MyAppointmentsPage, ProfilePage } from './pages/patient'

// Doctors' and admins' pages are their own chunks: a patient never loads them.
const DoctorArea = lazy(() => import('./pages/doctor'))
const AdminArea = lazy(() => import('./pages/admin'))

type Role = 'patient' | 'doctor' | 'admin' | 'auditor' | 'analyst'

function RequireRole({ roles, children }: { roles: Role[]; children: ReactNode }) {
  const { user, loading } = useAuth()
  const loc = useLocation()
  if (loading && !user) return <Loading />
  if (!user) return <Navigate to={`/login?next=${encodeURIComponent(loc.pathname + loc.search)}`} replace />
  if (!roles.includes(user.role as Role)) {
    return (
      <section className="page">
        <h1>Not for this account</h1>
        <p>This page is for {roles.join(' or ')} accounts. You are logged in as {user.role}.</p>
      </section>
    )
  }
  return <>{children}</>
}

function Nav() {
  const { user, signOut } = useAuth()
  const [open, setOpen] = useState(false)
  const loc = useLocation()
  useEffect(() => setOpen(false), [loc.pathname])
  const links: [string, string][] =
    user?.role === 'doctor'
      ? [['/doctor', 'My day'], ['/doctor/schedule', 'Schedule'], ['/doctor/profile', 'Profile']]
      : user?.role === 'admin'
        ? [['/admin', 'Dashboard'], ['/admin/doctors', 'Doctors'], ['/admin/appointments', 'Appointments'], ['/admin/payments', 'Payments'], ['/admin/system', 'System']]
        : [['/', 'Home'], ['/doctors', 'All doctors']]
  return (
    <header className="topbar">
      <Link to="/" className="brand" aria-label="Prescripto home">
        <span className="brand-mark" aria-hidden="true">+</span> Prescripto
      </Link>
      <button type="button" className="menu-toggle" aria-expanded={open} aria-controls="main-nav" onClick={() => setOpen(!open)}>
        Menu
      </button>
      <nav id="main-nav" aria-label="Main" className={open ? 'open' : ''}>
        <ul>
          {links.map(([to, label]) => (
            <li key={to}>
              <NavLink to={to} end>
                {label}
              </NavLink>
            </li>
          ))}
          {user?.role === 'patient' && (
            <>
              <li>
                <NavLink to="/my-appointments">My appointments</NavLink>
              </li>
              <li>
                <NavLink to="/my-profile">My profile</NavLink>
              </li>
            </>
          )}
        </ul>
        <div className="session">
          {user ? (
            <>
              <span className="who">{user.name}</span>
              <button type="button" className="btn-secondary" onClick={() => signOut()}>
                Log out
              </button>
            </>
          ) : (
            <>
              <Link to="/login" className="btn-secondary">
                Log in
              </Link>
              <Link to="/register" className="btn">
                Create account
              </Link>
            </>
          )}
        </div>
      </nav>
    </header>
  )
}

/** Moves focus to the page's heading after a client-side navigation. */
function useFocusOnNavigate(ref: React.RefObject<HTMLElement | null>) {
  const loc = useLocation()
  const first = useRef(true)
  useEffect(() => {
    if (first.current) {
      first.current = false
      return
    }
    ref.current?.focus()
  }, [loc.pathname, ref])
}

export function App() {
  const main = useRef<HTMLElement>(null)
  useFocusOnNavigate(main)
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <Nav />
      <main id="main" ref={main} tabIndex={-1}>
        <Suspense fallback={<Loading />}>
          <Routes>
            <Route path="/" element={<Home />} />
            <Route path="/doctors" element={<DoctorsPage />} />
            <Route path="/doctors/:id" element={<DoctorPage />} />
            <Route path="/login" element={<LoginPage />} />
            <Route path="/register" element={<RegisterPage />} />
            <Route path="/verify-email" element={<VerifyEmailPage />} />
            <Route path="/forgot-password" element={<ForgotPasswordPage />} />
            <Route path="/reset-password" element={<ResetPasswordPage />} />
            <Route path="/my-appointments" element={<RequireRole roles={['patient']}><MyAppointmentsPage /></RequireRole>} />
            <Route path="/my-profile" element={<RequireRole roles={['patient', 'doctor', 'admin', 'auditor', 'analyst']}><ProfilePage /></RequireRole>} />
            <Route path="/doctor/*" element={<RequireRole roles={['doctor']}><DoctorArea /></RequireRole>} />
            <Route path="/admin/*" element={<RequireRole roles={['admin']}><AdminArea /></RequireRole>} />
            <Route path="*" element={<NotFound />} />
          </Routes>
        </Suspense>
      </main>
      <footer className="footer">
        <p>Prescripto — book a trusted doctor. Times are shown in each doctor's own time zone.</p>
      </footer>
    </>
  )
}

function NotFound() {
  return (
    <section className="page">
      <h1>Page not found</h1>
      <p>
        There is nothing at this address. <Link to="/doctors">Find a doctor</Link>.
      </p>
    </section>
  )
}
