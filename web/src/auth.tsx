import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react'
import { request, setOnUnauthorized, setToken, type Schemas } from './api/client'

type User = Schemas['User']

interface Session {
  token: string | null
  user: User | null
  /** true until the stored session has been checked */
  loading: boolean
  signIn(token: string, user: User): void
  signOut(): Promise<void>
  refresh(): Promise<void>
}

const AuthContext = createContext<Session | null>(null)
const STORAGE = 'prescripto.session'

function stored(): { token: string; user: User } | null {
  try {
    const raw = localStorage.getItem(STORAGE)
    return raw ? JSON.parse(raw) : null
  } catch {
    return null
  }
}

export function AuthProvider({ children }: { children: ReactNode }) {
  // Read once: the token goes to the fetch wrapper before the first request.
  const [initial] = useState(() => {
    const s = stored()
    if (s) setToken(s.token)
    return s
  })
  const [token, setTok] = useState<string | null>(initial?.token ?? null)
  const [user, setUser] = useState<User | null>(initial?.user ?? null)
  const [loading, setLoading] = useState(!!initial)

  const clear = useCallback(() => {
    localStorage.removeItem(STORAGE)
    setToken(null)
    setTok(null)
    setUser(null)
  }, [])

  const signIn = useCallback((t: string, u: User) => {
    localStorage.setItem(STORAGE, JSON.stringify({ token: t, user: u }))
    setToken(t)
    setTok(t)
    setUser(u)
  }, [])

  const refresh = useCallback(async () => {
    const t = stored()?.token
    if (!t) return
    try {
      const me = await request<User>('/me')
      localStorage.setItem(STORAGE, JSON.stringify({ token: t, user: me }))
      setUser(me)
    } catch {
      /* a 401 clears the session through onUnauthorized */
    }
  }, [])

  const signOut = useCallback(async () => {
    try {
      await request('/auth/logout', { method: 'POST' })
    } catch {
      /* the token is dropped here either way */
    }
    clear()
  }, [clear])

  useEffect(() => {
    setOnUnauthorized(clear)
    if (initial) refresh().finally(() => setLoading(false))
    return () => setOnUnauthorized(null)
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [])

  const value = useMemo(() => ({ token, user, loading, signIn, signOut, refresh }), [token, user, loading, signIn, signOut, refresh])
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>
}

export function useAuth(): Session {
  const s = useContext(AuthContext)
  if (!s) throw new Error('useAuth outside AuthProvider')
  return s
}
