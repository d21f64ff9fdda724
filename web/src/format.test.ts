import { describe, expect, it } from 'vitest'
import { appointmentICS, dateInZone, formatMoney, slotGrid, timeInZone, zoneAbbreviation } from './format'

describe('times in the doctor\'s zone', () => {
  it('shows a UTC instant at the clinic\'s local time', () => {
    expect(timeInZone('2026-11-25T04:30:00Z', 'Asia/Kolkata')).toBe('10:00')
    expect(dateInZone(new Date('2026-11-25T20:00:00Z'), 'Asia/Kolkata')).toBe('2026-11-26')
    expect(zoneAbbreviation('UTC')).toBe('UTC')
  })
})

describe('formatMoney', () => {
  it('reads minor units', () => {
    expect(formatMoney(30000, 'INR')).toBe('₹300')
    expect(formatMoney(30050, 'INR')).toBe('₹300.50')
  })
})

describe('slotGrid', () => {
  const slot = (start: string) => ({ start, end: new Date(Date.parse(start) + 30 * 60000).toISOString().replace('.000', '') })
  it('greys out the times that are not free on a day, on one grid for all days', () => {
    const days = [
      // 10:00, 11:00 IST free; 10:30 taken
      { date: '2026-12-07', slots: [slot('2026-12-07T04:30:00Z'), slot('2026-12-07T05:30:00Z')] },
      // 10:30 IST free only
      { date: '2026-12-08', slots: [slot('2026-12-08T05:00:00Z')] },
      { date: '2026-12-09', slots: [] },
    ]
    const g = slotGrid(days, 'Asia/Kolkata')
    expect(g[0].slots).toEqual([
      { time: '10:00', start: '2026-12-07T04:30:00Z' },
      { time: '10:30', start: null },
      { time: '11:00', start: '2026-12-07T05:30:00Z' },
    ])
    expect(g[1].slots.map((s) => [s.time, !!s.start])).toEqual([
      ['10:00', false],
      ['10:30', true],
      ['11:00', false],
    ])
    expect(g[2].slots.every((s) => s.start === null)).toBe(true)
  })
  it('is empty without free slots', () => {
    expect(slotGrid([{ date: '2026-12-07', slots: [] }], 'UTC')).toEqual([{ date: '2026-12-07', slots: [] }])
  })
})

describe('appointmentICS', () => {
  const ics = appointmentICS(
    { id: 'a1', doctorName: 'Dr. Sarah Patel', start: '2026-12-07T04:30:00Z', end: '2026-12-07T05:00:00Z', timezone: 'Asia/Kolkata' },
    { address: '57th Cross, Richmond Circle; Bengaluru', now: new Date('2026-12-06T10:00:00Z') },
  )
  it('is one RFC 5545 event in UTC with CRLF lines', () => {
    expect(ics.startsWith('BEGIN:VCALENDAR\r\nVERSION:2.0\r\n')).toBe(true)
    expect(ics).toContain('\r\nDTSTART:20261207T043000Z\r\n')
    expect(ics).toContain('\r\nDTEND:20261207T050000Z\r\n')
    expect(ics).toContain('\r\nDTSTAMP:20261206T100000Z\r\n')
    expect(ics).toContain('UID:a1@prescripto')
    expect(ics).toContain('LOCATION:57th Cross\\, Richmond Circle\\; Bengaluru')
    expect(ics.endsWith('END:VCALENDAR\r\n')).toBe(true)
  })
  it('folds lines longer than 75 octets', () => {
    for (const line of ics.split('\r\n')) expect(new TextEncoder().encode(line).length).toBeLessThanOrEqual(75)
    expect(ics).toMatch(/\r\n /)
  })
})
