// The browser suite: real Chromium (Debian's, via playwright-core; no
// browser is downloaded) against a real `prescripto serve --demo` on a free
// port. Every page is checked with axe-core and for CSP violations, and
// photographed at desktop and phone width into docs/screenshots/.
//
//   npm run e2e                      (builds the binary with go build)
//   PRESCRIPTO_BIN=/path npm run e2e (uses that binary)
import { chromium } from 'playwright-core'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'
import { startServer } from './server.mjs'

const require = createRequire(import.meta.url)
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8')
const repo = resolve(import.meta.dirname, '../..')
const shots = join(repo, 'docs/screenshots')
const figuresFile = join(import.meta.dirname, 'out/figures.json')
mkdirSync(shots, { recursive: true })
mkdirSync(join(import.meta.dirname, 'out'), { recursive: true })

const DESKTOP = { width: 1280, height: 800 }
const PHONE = { width: 390, height: 844 }
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium'
const figures = {}

const server = await startServer()
const { base, creds } = server
const browser = await chromium.launch({
  executablePath,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
})

/** A fresh browser profile (one person) with problem collection. */
async function person(label) {
  const context = await browser.newContext({ viewport: DESKTOP, baseURL: base })
  context.setDefaultTimeout(15_000)
  const page = await context.newPage()
  page.problems = []
  page.on('console', (m) => {
    const t = m.text()
    if (/Content.Security.Policy|Refused to/i.test(t)) page.problems.push(`${label}: CSP: ${t}`)
  })
  page.on('pageerror', (e) => page.problems.push(`${label}: page error: ${e.message}`))
  return { context, page }
}

function assertNoProblems(page) {
  if (page.problems.length) throw new Error(page.problems.join('\n'))
}

/** axe-core on the page as it is (WCAG 2 A/AA rules). */
async function axe(page, name) {
  // evaluate() runs through the DevTools protocol, so the page's CSP (which
  // forbids inline scripts) does not stop the checker from loading.
  await page.evaluate(axeSource)
  const violations = await page.evaluate(async () => {
    const r = await window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
    return r.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')})`)
  })
  if (violations.length) throw new Error(`axe on ${name}:\n  ${violations.join('\n  ')}`)
}

/** Checks the page (axe, CSP) and saves it at desktop and phone width. */
async function snap(page, name) {
  await page.waitForLoadState('networkidle').catch(() => {})
  await axe(page, name)
  assertNoProblems(page)
  await page.screenshot({ path: join(shots, `${name}-desktop.png`), fullPage: true })
  await page.setViewportSize(PHONE)
  await page.waitForTimeout(150)
  await axe(page, name + ' (phone)')
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
  if (overflow > 1) throw new Error(`${name}: the page is ${overflow}px wider than a phone screen`)
  await page.screenshot({ path: join(shots, `${name}-phone.png`), fullPage: true })
  await page.setViewportSize(DESKTOP)
}

let seq = 0
async function signUp(page, name) {
  const email = `patient${Date.now()}${++seq}@example.com`
  await page.goto('/register')
  await page.getByLabel('Full name').fill(name)
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Password').fill('correct horse battery')
  await page.getByRole('button', { name: 'Create account' }).click()
  await page.waitForURL('**/doctors')
  return email
}

async function logIn(page, email, password) {
  await page.goto('/login')
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Log in' }).click()
  await page.waitForURL((u) => !u.pathname.startsWith('/login'))
}

/** Opens a doctor by name from the list filtered by speciality. */
async function openDoctor(page, speciality, name) {
  await page.goto('/doctors')
  await page.getByLabel('Speciality').selectOption(speciality)
  await page.getByRole('heading', { name: speciality + 's' }).waitFor()
  await page.getByRole('link', { name: new RegExp(name) }).click()
  await page.getByRole('heading', { level: 1, name }).waitFor()
}

/** The enabled slot buttons of the selected day, as their labels. */
async function freeTimes(page) {
  await page.locator('.times').waitFor()
  return page.locator('.times button:not([disabled])').allTextContents()
}

const results = []
async function scenario(name, f) {
  const t0 = Date.now()
  try {
    await f()
    results.push({ name, ok: true, ms: Date.now() - t0 })
    console.log(`ok   ${name} (${Date.now() - t0} ms)`)
  } catch (e) {
    results.push({ name, ok: false, ms: Date.now() - t0, error: e })
    console.log(`FAIL ${name}\n     ${String(e.stack || e).split('\n').join('\n     ')}`)
  }
}

// State shared between scenarios: the doctor the admin adds, and the
// appointment with them that the doctor completes at the end.
const newDoctor = { name: `Dr. Test Nova ${Date.now() % 100000}`, email: `nova${Date.now()}@prescripto.demo`, password: 'nova-password-1' }
let soonSlot = null

try {
  await scenario('serving: the doctors list first render (cold, desktop)', async () => {
    const { context, page } = await person('cold')
    const t0 = Date.now()
    await page.goto('/doctors', { waitUntil: 'commit' })
    const inPage = await page.waitForFunction(() => document.querySelector('[data-testid=doctor-list] li') && performance.now(), null, { polling: 'raf' })
    figures.timeToDoctorsListMs = Math.round(await inPage.jsonValue())
    figures.timeToDoctorsListWallMs = Date.now() - t0
    const nav = await page.evaluate(() => {
      const n = performance.getEntriesByType('navigation')[0]
      const res = performance.getEntriesByType('resource')
      return { ttfb: Math.round(n.responseStart), domContentLoaded: Math.round(n.domContentLoadedEventEnd), transferred: n.transferSize + res.reduce((s, r) => s + (r.transferSize || 0), 0) }
    })
    Object.assign(figures, { ttfbMs: nav.ttfb, domContentLoadedMs: nav.domContentLoaded, bytesTransferred: nav.transferred })
    // Again in the same profile: the hashed assets come from the cache
    // (immutable), index.html is revalidated.
    await page.goto('/doctors', { waitUntil: 'commit' })
    const warm = await page.waitForFunction(() => document.querySelector('[data-testid=doctor-list] li') && performance.now(), null, { polling: 'raf' })
    figures.timeToDoctorsListWarmMs = Math.round(await warm.jsonValue())
    await snap(page, 'doctors')
    await page.goto('/')
    await page.getByRole('heading', { name: 'Find by speciality' }).waitFor()
    await page.locator('.specialities li').first().waitFor()
    await snap(page, 'home')
    const api404 = await page.evaluate(async () => (await fetch('/api/v1/no-such-route')).headers.get('content-type'))
    if (!api404?.includes('problem+json')) throw new Error('/api/ is shadowed by the client: ' + api404)
    await context.close()
  })

  await scenario('admin adds a doctor (with a schedule) and the new doctor appears for patients', async () => {
    const { context, page } = await person('admin')
    await logIn(page, creds.admin_email, creds.admin_password)
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor()
    await page.locator('.stat').first().waitFor()
    await snap(page, 'admin-dashboard')
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Doctors' }).click()
    await page.locator('tbody tr').first().waitFor()
    await snap(page, 'admin-doctors')
    await page.getByRole('link', { name: 'Add doctor' }).click()
    await page.getByLabel('Name', { exact: true }).fill(newDoctor.name)
    await page.getByLabel('Login email').fill(newDoctor.email)
    await page.getByLabel('First password').fill(newDoctor.password)
    await page.getByLabel('Speciality').fill('Dermatologist')
    await page.getByLabel('Fee').fill('450')
    await page.getByLabel('About').fill('Added by the browser suite.')
    await page.getByLabel('Address').fill('1 Test Road, Bengaluru')
    // Hours: today only, in UTC, starting two minutes from now in 5-minute
    // slots with no notice, so an appointment starts while the suite runs
    // and the doctor can complete it at the end.
    await page.getByLabel('Time zone (IANA)').fill('UTC')
    await page.getByLabel('Slot length (minutes)').fill('5')
    await page.getByLabel('Minimum notice (minutes)').fill('0')
    const now = new Date()
    const start = new Date(Math.ceil((now.getTime() + 40_000) / 60_000) * 60_000)
    const hhmm = (d) => d.toISOString().slice(11, 16)
    const end = new Date(start.getTime() + 30 * 60_000)
    const weekday = ((now.getUTCDay() + 6) % 7) + 1
    const names = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday']
    for (let wd = 1; wd <= 7; wd++) {
      const box = page.getByRole('checkbox', { name: names[wd - 1], exact: true })
      if ((await box.isChecked()) !== (wd === weekday)) await box.click()
    }
    const sameDay = start.getUTCDate() === now.getUTCDate() && end.getUTCDate() === now.getUTCDate()
    if (sameDay) {
      await page.getByLabel(`${names[weekday - 1]} from`).fill(hhmm(start))
      await page.getByLabel(`${names[weekday - 1]} until`).fill(hhmm(end))
    }
    await snap(page, 'admin-add-doctor')
    await page.getByRole('button', { name: 'Add doctor' }).click()
    await page.getByRole('heading', { level: 1, name: newDoctor.name }).waitFor()
    if (sameDay) soonSlot = hhmm(start)
    await context.close()

    // A patient (not even logged in) finds the new doctor.
    const p = await person('visitor')
    await openDoctor(p.page, 'Dermatologist', newDoctor.name)
    await p.page.getByText('Added by the browser suite.').waitFor()
    assertNoProblems(p.page)
    await p.context.close()
  })

  let soonAppointmentPatient = null
  if (soonSlot) {
    await scenario('a patient books the new doctor\'s first slot (it starts within about a minute)', async () => {
      const { context, page } = await person('early patient')
      soonAppointmentPatient = await signUp(page, 'Early Patient')
      await openDoctor(page, 'Dermatologist', newDoctor.name)
      // The first free time: soonSlot, or a later one of the same hours when
      // the machine was slow enough for soonSlot to have begun.
      const times = await freeTimes(page)
      if (!times.length || times[0] < soonSlot) throw new Error(`first free time ${times[0]}, want ${soonSlot} or later`)
      await page.getByRole('button', { name: times[0], exact: true }).click()
      await page.getByRole('button', { name: 'Book appointment' }).click()
      await page.waitForURL('**/my-appointments**')
      await page.getByTestId('upcoming').getByText(newDoctor.name).waitFor()
      await context.close()
    })
  }

  await scenario('patient: sign up, find a Dermatologist, book the first free slot, see it, reschedule, cancel', async () => {
    const { context, page } = await person('patient')
    await page.goto('/register')
    await snap(page, 'register')
    await signUp(page, 'Asha Rao')
    await page.goto('/')
    await page.getByRole('link', { name: /Dermatologist/ }).first().click()
    await page.getByRole('heading', { name: 'Dermatologists' }).waitFor()
    await page.getByRole('link', { name: /Dr\. Sarah Patel/ }).click()
    await page.getByRole('heading', { level: 1, name: 'Dr. Sarah Patel' }).waitFor()
    const times = await freeTimes(page)
    if (!times.length) throw new Error('no free slot')
    await page.getByText('Asia/Kolkata', { exact: false }).first().waitFor()
    // Keyboard: tab to the first free time and choose it with Enter.
    const first = page.locator('.times button:not([disabled])').first()
    await first.focus()
    await page.keyboard.press('Enter')
    if ((await first.getAttribute('aria-pressed')) !== 'true') throw new Error('Enter did not select the slot')
    await snap(page, 'doctor-page')
    // A double click books once: both clicks carry the same Idempotency-Key.
    const posts = []
    page.on('request', (r) => r.method() === 'POST' && r.url().endsWith('/api/v1/appointments') && posts.push(r.headers()['idempotency-key']))
    await page.getByRole('button', { name: 'Book appointment' }).dblclick()
    await page.waitForURL('**/my-appointments**')
    if (new Set(posts).size !== 1) throw new Error(`booking sent ${posts.length} requests with ${new Set(posts).size} keys`)
    const upcoming = page.getByTestId('upcoming')
    await upcoming.getByText('Dr. Sarah Patel').waitFor()
    if ((await upcoming.locator('li').count()) !== 1) throw new Error('the double click booked twice')
    await page.getByRole('status').filter({ hasText: 'booked' }).waitFor()
    await snap(page, 'my-appointments')

    // Add to calendar downloads an .ics file.
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Add to calendar' }).click()])
    if (!download.suggestedFilename().endsWith('.ics')) throw new Error('calendar file: ' + download.suggestedFilename())

    // Reschedule to another free time.
    const before = await upcoming.locator('time').textContent()
    await page.getByRole('button', { name: 'Reschedule' }).click()
    await page.locator('.inline-form .times').waitFor()
    // The day's last free time: late in the doctor's day only one or two may
    // be left, and any free time differs from the booked one (shown taken).
    await page.locator('.inline-form .times button:not([disabled])').last().click()
    await snap(page, 'reschedule')
    await page.getByRole('button', { name: /^Move to/ }).click()
    await page.getByRole('status').filter({ hasText: 'moved' }).waitFor()
    await page.waitForFunction((b) => document.querySelector('[data-testid=upcoming] time')?.textContent !== b, before, { timeout: 10_000 }).catch(async () => {
      throw new Error('reschedule did not move the appointment: ' + (await upcoming.locator('time').textContent()))
    })

    // Cancel with a reason.
    await page.getByRole('button', { name: 'Cancel', exact: true }).click()
    await page.getByLabel('Reason for cancelling').fill('Feeling better')
    await page.getByRole('button', { name: 'Cancel appointment' }).click()
    await page.getByRole('status').filter({ hasText: 'cancelled' }).waitFor()
    await page.getByTestId('past').getByText('Reason: Feeling better').waitFor()

    await page.getByRole('link', { name: 'My profile' }).click()
    await page.getByLabel('Phone').fill('+91 98450 00000')
    await page.getByRole('button', { name: 'Save' }).click()
    await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor()
    await snap(page, 'profile')
    await page.getByRole('button', { name: 'Log out' }).click()
    await page.getByRole('link', { name: 'Log in' }).click()
    await snap(page, 'login')
    await context.close()
  })

  await scenario('patient pays through the sandbox checkout (payment required: held, then confirmed)', async () => {
    const { context, page } = await person('payer')
    await signUp(page, 'Ravi Kumar')
    await openDoctor(page, 'General physician', 'Dr. Richard James')
    await page.locator('.times button:not([disabled])').first().click()
    await page.getByRole('button', { name: 'Book appointment' }).click()
    await page.waitForURL('**/my-appointments**')
    const item = page.getByTestId('upcoming').locator('li').first()
    await item.getByText('Awaiting payment').waitFor()
    await item.getByText(/Pay by/).waitFor()
    await snap(page, 'my-appointments-held')
    await item.getByRole('button', { name: 'Pay online' }).click()
    await page.waitForURL('**/sandbox/checkout/**')
    await page.screenshot({ path: join(shots, 'sandbox-checkout-desktop.png') })
    await page.getByRole('button', { name: /^Pay / }).click()
    await page.waitForURL('**/my-appointments**')
    await page.getByRole('status').filter({ hasText: 'Payment received' }).waitFor()
    await page.getByTestId('upcoming').getByText('Confirmed').waitFor()
    await page.getByTestId('upcoming').getByText('Paid online').waitFor()
    await snap(page, 'my-appointments-paid')
    await context.close()
  })

  await scenario('two browsers race for one slot: one books, the other sees the conflict explained and fresh slots', async () => {
    const a = await person('racer A')
    const b = await person('racer B')
    await signUp(a.page, 'Racer One')
    await signUp(b.page, 'Racer Two')
    await openDoctor(a.page, 'Dermatologist', 'Dr. Ava Mitchell')
    await openDoctor(b.page, 'Dermatologist', 'Dr. Ava Mitchell')
    const slot = (await freeTimes(a.page))[0]
    // The day the race is on: when its last free time goes, the loser's
    // picker moves on to the next day with one (where the same time of day
    // may well be free), so the checks below go back to it first.
    const day = await a.page.locator('.days button[aria-pressed=true] .day-date').textContent()
    for (const p of [a.page, b.page]) await p.getByRole('button', { name: slot, exact: true }).click()
    await Promise.all([a.page, b.page].map((p) => p.getByRole('button', { name: 'Book appointment' }).click()))
    const outcome = async (p) => {
      const won = p.waitForURL('**/my-appointments**').then(() => 'won')
      const lost = p.getByRole('alert').filter({ hasText: 'someone booked that time' }).waitFor().then(() => 'lost')
      return Promise.race([won, lost])
    }
    const [ra, rb] = await Promise.all([outcome(a.page), outcome(b.page)])
    if ([ra, rb].sort().join() !== 'lost,won') throw new Error(`race outcome ${ra}, ${rb}`)
    const loser = ra === 'lost' ? a.page : b.page
    await loser.locator('.times').waitFor()
    await loser.locator('.days button', { has: loser.locator('.day-date', { hasText: new RegExp(`^${day}$`) }) }).click()
    const fresh = await freeTimes(loser)
    if (fresh.includes(slot)) throw new Error(`the taken time ${slot} is still offered`)
    const greyed = loser.getByRole('button', { name: `${slot}, not available` })
    if (!(await greyed.isDisabled())) throw new Error('the taken time is not greyed out')
    await snap(loser, 'booking-conflict')
    await a.context.close()
    await b.context.close()
  })

  await scenario('doctor logs in, sees the day, and completes the appointment once it has started', async () => {
    const { context, page } = await person('doctor')
    if (!soonSlot) {
      console.log('     (near midnight UTC: the new doctor has no slot today; completing is not exercised)')
    }
    // The demo doctor's page first (screenshots of the doctor's area).
    await logIn(page, 'sarah.patel@prescripto.demo', creds.doctor_password)
    await page.getByRole('heading', { name: 'My day' }).waitFor()
    await page.locator('.stat').first().waitFor()
    await snap(page, 'doctor-day')
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Schedule' }).click()
    await page.getByRole('heading', { name: 'Schedule and time off' }).waitFor()
    await snap(page, 'doctor-schedule')
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Profile' }).click()
    await page.getByLabel('About').waitFor()
    await snap(page, 'doctor-profile')
    await page.getByRole('button', { name: 'Log out' }).click()
    if (!soonSlot) return await context.close()

    await logIn(page, newDoctor.email, newDoctor.password)
    const item = page.locator('[data-testid=today] li').filter({ hasText: 'Early Patient' })
    await item.waitFor()
    const startsAt = Date.parse(await item.locator('time').getAttribute('datetime'))
    const wait = startsAt - Date.now() + 1500
    if (wait > 0) {
      console.log(`     waiting ${Math.round(wait / 1000)} s for the appointment to start`)
      await page.waitForTimeout(wait)
      await page.reload()
    }
    await item.getByRole('button', { name: 'Complete' }).click()
    await page.getByRole('status').filter({ hasText: 'Marked completed' }).waitFor()
    await page.locator('[data-testid=today] li').filter({ hasText: 'Early Patient' }).getByText('Completed').waitFor()
    assertNoProblems(page)
    await context.close()
  })

  await scenario('account pages: forgot password, a bad reset or verification token shows the problem\'s detail', async () => {
    const { context, page } = await person('account')
    await page.goto('/login')
    await page.getByLabel('Email').fill('nobody@example.com')
    await page.getByLabel('Password').fill('wrong password')
    await page.getByRole('button', { name: 'Log in' }).click()
    await page.getByRole('alert').waitFor()
    await page.getByRole('link', { name: 'Forgot your password?' }).click()
    await page.getByLabel('Email').fill('nobody@example.com')
    await page.getByRole('button', { name: 'Send reset mail' }).click()
    await page.getByRole('status').filter({ hasText: 'reset token is on its way' }).waitFor()
    await snap(page, 'forgot-password')
    await page.goto('/reset-password?token=not-a-real-token')
    await page.getByLabel('New password', { exact: true }).fill('another password 1')
    await page.getByRole('button', { name: 'Set password' }).click()
    const problem = await page.getByRole('alert').textContent()
    if (!problem || /Request failed/.test(problem)) throw new Error('no problem detail shown: ' + problem)
    await snap(page, 'reset-password')
    await signUp(page, 'Vera Verify')
    await page.goto('/verify-email?token=not-a-real-token')
    await page.getByRole('button', { name: 'Verify' }).click()
    await page.getByRole('alert').waitFor()
    await snap(page, 'verify-email')
    await context.close()
  })

  await scenario('admin: all appointments with filters, payments, system', async () => {
    const { context, page } = await person('admin 2')
    await logIn(page, creds.admin_email, creds.admin_password)
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Appointments' }).click()
    await page.locator('.appt').first().waitFor()
    await page.getByLabel('Status').selectOption('cancelled')
    await page.getByText('Reason: Feeling better').waitFor()
    await snap(page, 'admin-appointments')
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Payments' }).click()
    await page.locator('tbody tr').first().waitFor()
    await snap(page, 'admin-payments')
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'System' }).click()
    await page.locator('tbody tr').first().waitFor()
    await snap(page, 'admin-system')
    await context.close()
  })
} finally {
  await browser.close()
  await server.stop()
}

writeFileSync(figuresFile, JSON.stringify(figures, null, 2) + '\n')
console.log('figures', JSON.stringify(figures))
const failed = results.filter((r) => !r.ok)
console.log(`${results.length - failed.length} passed, ${failed.length} failed`)
if (failed.length) {
  console.log('server log (tail):\n' + server.log.join('').split('\n').slice(-40).join('\n'))
  process.exit(1)
}
