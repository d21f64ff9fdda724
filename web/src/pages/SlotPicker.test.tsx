import { cleanup, fireEvent, render, screen } from '@testing-library/react'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { SlotPicker } from './browse'

afterEach(cleanup)

const slots = {
  doctorId: 'd1',
  timezone: 'Asia/Kolkata',
  days: [
    { date: '2026-12-07', slots: [] },
    {
      date: '2026-12-08',
      slots: [
        { start: '2026-12-08T04:30:00Z', end: '2026-12-08T05:00:00Z' },
        { start: '2026-12-08T05:30:00Z', end: '2026-12-08T06:00:00Z' },
      ],
    },
  ],
}

describe('SlotPicker', () => {
  it('opens on the first day with a free time, in the doctor\'s zone, greying what is not free', () => {
    const onSelect = vi.fn()
    render(<SlotPicker slots={slots} zone="Asia/Kolkata" selected={null} onSelect={onSelect} />)
    expect(screen.getByText('Asia/Kolkata')).toBeTruthy()
    expect(screen.getByRole('button', { name: /Tue 8 Dec 2 free/ }).getAttribute('aria-pressed')).toBe('true')
    const taken = screen.getByRole('button', { name: '10:30, not available' }) as HTMLButtonElement
    expect(taken.disabled).toBe(true)
    fireEvent.click(screen.getByRole('button', { name: '11:00' }))
    expect(onSelect).toHaveBeenCalledWith('2026-12-08T05:30:00Z')
  })

  it('shows a day without free times as such', () => {
    render(<SlotPicker slots={slots} zone="Asia/Kolkata" selected={null} onSelect={() => {}} />)
    fireEvent.click(screen.getByRole('button', { name: /Mon 7 Dec 0 free/ }))
    expect(screen.getAllByRole('button', { name: /not available/ })).toHaveLength(3)
  })

  it('marks the selected time', () => {
    render(<SlotPicker slots={slots} zone="Asia/Kolkata" selected="2026-12-08T04:30:00Z" onSelect={() => {}} />)
    expect(screen.getByRole('button', { name: '10:00' }).getAttribute('aria-pressed')).toBe('true')
  })
})
