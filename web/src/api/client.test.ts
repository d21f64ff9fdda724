import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ApiError, currentMinPosition, describeError, request, resetPosition, setToken } from './client'

type Call = { url: string; init: RequestInit }

function answer(status: number, body: unknown, contentType = 'application/json') {
  return new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { 'Content-Type': contentType } })
}

describe('request', () => {
  let calls: Call[]
  let next: Response[]
  beforeEach(() => {
    calls = []
    next = []
    resetPosition()
    setToken(null)
    vi.stubGlobal('fetch', async (url: string, init: RequestInit) => {
      calls.push({ url, init })
      return next.shift() ?? answer(200, {})
    })
  })
  afterEach(() => vi.unstubAllGlobals())
  const headers = (i: number) => calls[i].init.headers as Record<string, string>

  it('adds the bearer token when there is one', async () => {
    await request('/me')
    expect(headers(0).Authorization).toBeUndefined()
    setToken('t0k3n')
    await request('/me')
    expect(headers(1).Authorization).toBe('Bearer t0k3n')
  })

  it('sends an Idempotency-Key on every command, the caller\'s when given', async () => {
    await request('/appointments', { method: 'POST', body: { a: 1 }, idempotencyKey: 'key-1' })
    await request('/appointments', { method: 'POST', body: { a: 1 }, idempotencyKey: 'key-1' })
    await request('/auth/logout', { method: 'POST' })
    expect(headers(0)['Idempotency-Key']).toBe('key-1')
    expect(headers(1)['Idempotency-Key']).toBe('key-1')
    expect(headers(2)['Idempotency-Key']).toMatch(/.{8,}/)
    expect(headers(0)['Content-Type']).toBe('application/json')
    expect(calls[0].init.body).toBe('{"a":1}')
  })

  it('reads its own writes: reads carry the highest position a command answered', async () => {
    await request('/doctors')
    expect(headers(0)['X-Min-Position']).toBeUndefined()
    next.push(answer(201, { id: 'a1', position: 42 }))
    await request('/appointments', { method: 'POST', body: {} })
    next.push(answer(200, { id: 'a1', position: 7 }))
    await request('/appointments/a1/cancel', { method: 'POST', body: {} })
    expect(currentMinPosition()).toBe(42)
    await request('/appointments')
    expect(headers(3)['X-Min-Position']).toBe('42')
    expect(headers(1)['X-Min-Position']).toBeUndefined()
  })

  it('builds the query, leaving out empty values', async () => {
    await request('/doctors', { query: { speciality: 'General physician', q: '', available: true } })
    expect(calls[0].url).toBe('/api/v1/doctors?speciality=General+physician&available=true')
  })

  it('turns a problem into an ApiError with its detail and code', async () => {
    next.push(answer(409, { type: 'about:blank', title: 'Conflict', status: 409, detail: 'The slot was just taken.', code: 'slot_unavailable' }, 'application/problem+json'))
    const e = (await request('/appointments', { method: 'POST', body: {} }).catch((x: unknown) => x)) as ApiError
    expect(e).toBeInstanceOf(ApiError)
    expect(e.status).toBe(409)
    expect(e.code).toBe('slot_unavailable')
    expect(describeError(e)).toBe('The slot was just taken.')
  })

  it('shows a detail as a sentence', async () => {
    next.push(answer(400, { title: 'Bad Request', status: 400, detail: 'the token is invalid or has expired', code: 'invalid_token' }))
    const e = await request('/auth/verify-email', { method: 'POST', body: { token: 'x' } }).catch((x: unknown) => x)
    expect(describeError(e)).toBe('The token is invalid or has expired.')
  })

  it('says to retry on a 503', async () => {
    next.push(answer(503, { title: 'Service Unavailable', status: 503, detail: 'The read model is catching up.', code: 'not_caught_up' }))
    const e = await request('/doctors').catch((x: ApiError) => x)
    expect(describeError(e)).toMatch(/catching up.*retry/)
  })

  it('explains a network failure in words', async () => {
    vi.stubGlobal('fetch', async () => {
      throw new TypeError('Failed to fetch')
    })
    const e = await request('/doctors').catch((x: ApiError) => x)
    expect(e).toBeInstanceOf(ApiError)
    expect(describeError(e)).toMatch(/could not be reached/)
  })

  it('answers undefined for 204', async () => {
    next.push(new Response(null, { status: 204 }))
    expect(await request('/auth/logout', { method: 'POST' })).toBeUndefined()
  })
})
