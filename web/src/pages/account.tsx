import { useState, type FormEvent, type ReactNode } from 'react'
import { Link, useNavigate, useSearchParams } from 'react-router-dom'
import { request, type Schemas } from '../api/client'
import { useAuth } from '../auth'
import { ErrorBox, Notice, useTitle } from '../ui'

type AuthResult = Schemas['AuthResult']

/** Where to go after logging in: a same-site path from ?next=, else the role's home. */
function home(role: string, next: string | null): string {
  if (next && next.startsWith('/') && !next.startsWith('//')) return next
  return role === 'doctor' ? '/doctor' : role === 'admin' ? '/admin' : '/doctors'
}

export function Field({ id, label, children, hint }: { id: string; label: string; children: ReactNode; hint?: string }) {
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children}
      {hint && (
        <small id={`${id}-hint`} className="muted">
          {hint}
        </small>
      )}
    </div>
  )
}

/** A form that runs submit, shows its error, and disables itself meanwhile. */
function useSubmit(submit: () => Promise<void>) {
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>()
  const onSubmit = async (e: FormEvent) => {
    e.preventDefault()
    setBusy(true)
    setError(undefined)
    try {
      await submit()
    } catch (err) {
      setError(err)
    } finally {
      setBusy(false)
    }
  }
  return { busy, error, onSubmit }
}

export function LoginPage() {
  useTitle('Log in')
  const { signIn } = useAuth()
  const nav = useNavigate()
  const [params] = useSearchParams()
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')
  const f = useSubmit(async () => {
    const r = await request<AuthResult>('/auth/login', { method: 'POST', body: { email, password } })
    signIn(r.token, r.user)
    nav(home(r.user.role, params.get('next')), { replace: true })
  })
  return (
    <section className="page narrow">
      <h1>Log in</h1>
      <form onSubmit={f.onSubmit} className="stack">
        <Field id="email" label="Email">
          <input id="email" type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </Field>
        <Field id="password" label="Password">
          <input id="password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        </Field>
        <ErrorBox error={f.error} />
        <button type="submit" className="btn" disabled={f.busy}>
          {f.busy ? 'Logging in…' : 'Log in'}
        </button>
      </form>
      <p>
        <Link to="/forgot-password">Forgot your password?</Link> · New here? <Link to={`/register${params.get('next') ? `?next=${encodeURIComponent(params.get('next')!)}` : ''}`}>Create an account</Link>
      </p>
    </section>
  )
}

export function RegisterPage() {
  useTitle('Create account')
  const { signIn } = useAuth()
  const nav = useNavigate()
  const [params] = useSearchParams()
  const [name, setName] = useState('')
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')
  const f = useSubmit(async () => {
    const r = await request<AuthResult>('/auth/register', { method: 'POST', body: { name, email, password } })
    signIn(r.token, r.user)
    nav(home(r.user.role, params.get('next')), { replace: true })
  })
  return (
    <section className="page narrow">
      <h1>Create account</h1>
      <p>Book appointments and keep track of them in one place.</p>
      <form onSubmit={f.onSubmit} className="stack">
        <Field id="name" label="Full name">
          <input id="name" autoComplete="name" required value={name} onChange={(e) => setName(e.target.value)} />
        </Field>
        <Field id="email" label="Email">
          <input id="email" type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </Field>
        <Field id="password" label="Password" hint="8 to 72 characters.">
          <input id="password" type="password" autoComplete="new-password" required minLength={8} aria-describedby="password-hint" value={password} onChange={(e) => setPassword(e.target.value)} />
        </Field>
        <ErrorBox error={f.error} />
        <button type="submit" className="btn" disabled={f.busy}>
          {f.busy ? 'Creating…' : 'Create account'}
        </button>
      </form>
      <p>
        Already have an account? <Link to="/login">Log in</Link>
      </p>
    </section>
  )
}

export function VerifyEmailPage() {
  useTitle('Verify email')
  const { user, refresh } = useAuth()
  const [params] = useSearchParams()
  const [token, setToken] = useState(params.get('token') ?? '')
  const [done, setDone] = useState('')
  const f = useSubmit(async () => {
    await request('/auth/verify-email', { method: 'POST', body: { token: token.trim() } })
    setDone('Your email address is verified. You can book appointments now.')
    await refresh()
  })
  const resend = useSubmit(async () => {
    await request('/auth/resend-verification', { method: 'POST' })
    setDone('We sent you a new verification mail.')
  })
  return (
    <section className="page narrow">
      <h1>Verify your email</h1>
      <p>Paste the token from the mail we sent you.</p>
      <form onSubmit={f.onSubmit} className="stack">
        <Field id="token" label="Verification token">
          <input id="token" required autoComplete="one-time-code" value={token} onChange={(e) => setToken(e.target.value)} />
        </Field>
        <ErrorBox error={f.error || resend.error} />
        <Notice>{done}</Notice>
        <button type="submit" className="btn" disabled={f.busy}>
          Verify
        </button>
      </form>
      {user && !user.emailVerified && (
        <form onSubmit={resend.onSubmit}>
          <button type="submit" className="btn-secondary" disabled={resend.busy}>
            Send the mail again
          </button>
        </form>
      )}
    </section>
  )
}

export function ForgotPasswordPage() {
  useTitle('Forgot password')
  const [email, setEmail] = useState('')
  const [sent, setSent] = useState(false)
  const f = useSubmit(async () => {
    await request('/auth/forgot-password', { method: 'POST', body: { email } })
    setSent(true)
  })
  return (
    <section className="page narrow">
      <h1>Forgot your password?</h1>
      <form onSubmit={f.onSubmit} className="stack">
        <Field id="email" label="Email">
          <input id="email" type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </Field>
        <ErrorBox error={f.error} />
        <Notice>{sent && 'If an account has this address, a mail with a reset token is on its way.'}</Notice>
        <button type="submit" className="btn" disabled={f.busy}>
          Send reset mail
        </button>
      </form>
      <p>
        Have a token? <Link to="/reset-password">Set a new password</Link>
      </p>
    </section>
  )
}

export function ResetPasswordPage() {
  useTitle('Reset password')
  const [params] = useSearchParams()
  const [token, setToken] = useState(params.get('token') ?? '')
  const [password, setPassword] = useState('')
  const [done, setDone] = useState(false)
  const f = useSubmit(async () => {
    await request('/auth/reset-password', { method: 'POST', body: { token: token.trim(), password } })
    setDone(true)
  })
  return (
    <section className="page narrow">
      <h1>Set a new password</h1>
      <form onSubmit={f.onSubmit} className="stack">
        <Field id="token" label="Reset token (from the mail)">
          <input id="token" required autoComplete="one-time-code" value={token} onChange={(e) => setToken(e.target.value)} />
        </Field>
        <Field id="password" label="New password" hint="8 to 72 characters.">
          <input id="password" type="password" autoComplete="new-password" required minLength={8} aria-describedby="password-hint" value={password} onChange={(e) => setPassword(e.target.value)} />
        </Field>
        <ErrorBox error={f.error} />
        <Notice>{done && <>Your password is changed. <Link to="/login">Log in</Link> with it.</>}</Notice>
        <button type="submit" className="btn" disabled={f.busy}>
          Set password
        </button>
      </form>
    </section>
  )
}

export { useSubmit }
