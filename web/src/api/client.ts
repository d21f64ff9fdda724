// The one fetch wrapper: every call to the public REST API (/api/v1) goes
// through request(). It adds the bearer token, an Idempotency-Key on
// commands (the caller's, so a retry or a double click reuses it), and
// X-Min-Position on reads: the highest `position` any command answered in
// this page's life, so every read sees the caller's own writes.
import type { components } from './schema'

export type Schemas = components['schemas']
export type Problem = Schemas['Problem']

export const BASE = '/api/v1'

/** A problem's detail as a sentence: capital first letter, closing stop. */
export function sentence(s: string): string {
  const t = s.trim()
  if (!t) return t
  return t[0].toUpperCase() + t.slice(1) + (/[.!?)]$/.test(t) ? '' : '.')
}

/** An answer that is not 2xx, with the problem details the API sent. */
export class ApiError extends Error {
  readonly status: number
  readonly code: string
  readonly problem?: Problem
  constructor(status: number, problem?: Problem, fallback?: string) {
    super(sentence(problem?.detail || problem?.title || fallback || `Request failed (${status})`))
    this.status = status
    this.code = problem?.code ?? ''
    this.problem = problem
  }
}

let token: string | null = null
let minPosition = 0
let onUnauthorized: (() => void) | null = null

export function setToken(t: string | null) {
  token = t
}
export function getToken() {
  return token
}
/** Called when a request with a token answers 401 (the session ended). */
export function setOnUnauthorized(f: (() => void) | null) {
  onUnauthorized = f
}
/** The position reads wait for (tests and diagnostics). */
export function currentMinPosition() {
  return minPosition
}
export function notePosition(p: unknown) {
  if (typeof p === 'number' && Number.isSafeInteger(p) && p > minPosition) minPosition = p
}
export function resetPosition() {
  minPosition = 0
}

/** A new Idempotency-Key: one per user action (click), reused on retry. */
export function newIdempotencyKey(): string {
  if (typeof crypto !== 'undefined' && 'randomUUID' in crypto) return crypto.randomUUID()
  return Math.random().toString(36).slice(2) + Date.now().toString(36)
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE'
  body?: unknown
  idempotencyKey?: string
  query?: Record<string, string | number | boolean | undefined | null>
  accept?: string
  signal?: AbortSignal
}

export function buildURL(path: string, query?: RequestOptions['query']): string {
  let url = BASE + path
  if (query) {
    const q = new URLSearchParams()
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== '') q.set(k, String(v))
    }
    const s = q.toString()
    if (s) url += '?' + s
  }
  return url
}

async function send(path: string, o: RequestOptions): Promise<Response> {
  const method = o.method ?? 'GET'
  const headers: Record<string, string> = { Accept: o.accept ?? 'application/json' }
  if (token) headers.Authorization = 'Bearer ' + token
  if (o.body !== undefined) headers['Content-Type'] = 'application/json'
  if (method !== 'GET') {
    headers['Idempotency-Key'] = o.idempotencyKey ?? newIdempotencyKey()
  } else if (minPosition > 0) {
    headers['X-Min-Position'] = String(minPosition)
  }
  let res: Response
  try {
    res = await fetch(buildURL(path, o.query), {
      method,
      headers,
      body: o.body === undefined ? undefined : JSON.stringify(o.body),
      signal: o.signal,
    })
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e
    throw new ApiError(0, undefined, 'The server could not be reached. Check your connection and try again.')
  }
  if (!res.ok) {
    let problem: Problem | undefined
    try {
      problem = (await res.json()) as Problem
    } catch {
      problem = undefined
    }
    if (res.status === 401 && token && onUnauthorized) onUnauthorized()
    throw new ApiError(res.status, problem)
  }
  return res
}

/** Calls the API and decodes its JSON answer (undefined for 204/202 without body). */
export async function request<T>(path: string, o: RequestOptions = {}): Promise<T> {
  const res = await send(path, o)
  if (res.status === 204) return undefined as T
  const text = await res.text()
  if (!text) return undefined as T
  const data = JSON.parse(text) as T
  if (data && typeof data === 'object' && 'position' in data) notePosition((data as { position: unknown }).position)
  return data
}

/** The words to show for an error: the problem's detail, plus what to do. */
export function describeError(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.status === 503) return `${e.message} The service is busy right now — please retry in a moment.`
    if (e.status === 429) return `${e.message} Please wait a minute and try again.`
    return e.message
  }
  if (e instanceof Error) return e.message
  return 'Something went wrong.'
}
