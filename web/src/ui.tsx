import { useCallback, useEffect, useRef, useState, type ReactNode } from 'react'
import { describeError } from './api/client'

/** Shows an error's problem detail in words; nothing when there is none. */
export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null
  return (
    <p className="error" role="alert">
      {typeof error === 'string' ? error : describeError(error)}
    </p>
  )
}

export function Notice({ children }: { children: ReactNode }) {
  if (!children) return null
  return (
    <p className="notice" role="status">
      {children}
    </p>
  )
}

export function Loading({ what = 'Loading' }: { what?: string }) {
  return (
    <p className="loading" role="status" aria-live="polite">
      {what}…
    </p>
  )
}

export interface Loaded<T> {
  data: T | undefined
  error: unknown
  loading: boolean
  reload(): Promise<void>
}

/** Loads with load() when deps change; reload() loads again. */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Loaded<T> {
  const [data, setData] = useState<T>()
  const [error, setError] = useState<unknown>()
  const [loading, setLoading] = useState(true)
  const ctrl = useRef<AbortController | null>(null)
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const run = useCallback(async () => {
    ctrl.current?.abort()
    const c = new AbortController()
    ctrl.current = c
    setLoading(true)
    try {
      const d = await load(c.signal)
      if (!c.signal.aborted) {
        setData(d)
        setError(undefined)
      }
    } catch (e) {
      if (!c.signal.aborted) setError(e)
    } finally {
      if (!c.signal.aborted) setLoading(false)
    }
  }, deps)
  useEffect(() => {
    run()
    return () => ctrl.current?.abort()
  }, [run])
  return { data, error, loading, reload: run }
}

/** Sets the document title (the page's name first). */
export function useTitle(title: string) {
  useEffect(() => {
    document.title = title ? `${title} · Prescripto` : 'Prescripto'
  }, [title])
}

export function Avatar({ name, url }: { name: string; url?: string }) {
  const [failed, setFailed] = useState(false)
  const initials = name
    .replace(/^Dr\.?\s+/i, '')
    .split(/\s+/)
    .map((w) => w[0])
    .join('')
    .slice(0, 2)
    .toUpperCase()
  if (url && !failed) {
    return <img className="avatar" src={url} alt="" loading="lazy" onError={() => setFailed(true)} />
  }
  return (
    <span className="avatar avatar-initials" aria-hidden="true">
      {initials}
    </span>
  )
}
