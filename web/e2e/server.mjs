// Starts a real `prescripto serve --demo` on a free port with a fresh data
// directory, and stops it. The binary is PRESCRIPTO_BIN, or built here.
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const repo = resolve(import.meta.dirname, '../..')

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer()
    s.on('error', fail)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => ok(port))
    })
  })
}

export async function startServer() {
  let bin = process.env.PRESCRIPTO_BIN
  if (!bin) {
    bin = join(tmpdir(), 'prescripto-e2e-bin')
    execFileSync('go', ['build', '-o', bin, './cmd/prescripto'], { cwd: repo, stdio: 'inherit' })
  }
  const data = mkdtempSync(join(tmpdir(), 'prescripto-e2e-'))
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const log = []
  const proc = spawn(bin, ['serve', '--demo', '--addr', `127.0.0.1:${port}`], {
    env: {
      ...process.env,
      PRESCRIPTO_DATA: data,
      LOG_LEVEL: 'warn',
      // The suite books and cancels more than a person would in a minute.
      BOOKING_RATE_LIMIT: '1000',
      AUTH_RATE_LIMIT: '1000',
      MAX_LIVE_BOOKINGS: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  proc.stdout.on('data', (b) => log.push(String(b)))
  proc.stderr.on('data', (b) => log.push(String(b)))
  const deadline = Date.now() + 60_000
  for (;;) {
    if (proc.exitCode !== null) throw new Error('prescripto exited:\n' + log.join(''))
    try {
      const r = await fetch(base + '/readyz')
      if (r.ok) break
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error('prescripto not ready in 60 s:\n' + log.join(''))
    await new Promise((r) => setTimeout(r, 200))
  }
  const creds = Object.fromEntries(
    readFileSync(join(data, 'demo-credentials'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('=')),
  )
  return {
    base,
    creds,
    log,
    async stop() {
      proc.kill('SIGTERM')
      await new Promise((r) => {
        if (proc.exitCode !== null) return r()
        proc.on('exit', r)
        setTimeout(() => {
          proc.kill('SIGKILL')
          r()
        }, 10_000)
      })
      rmSync(data, { recursive: true, force: true })
    },
  }
}
