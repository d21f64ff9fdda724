// k6 open-model booking load: POST /api/v1/appointments at a constant
// arrival rate, every request a distinct doctor x slot pair.
//
//   k6 run -e BASE=http://127.0.0.1:18480 -e DATA=/path/to/data tests/load/k6/book.js
//
// Env: BASE (loopback only), DATA (server data dir, for demo-credentials) or
// ADMIN_EMAIL/ADMIN_PASSWORD, RATE (bookings/s, default 2000), DURATION
// (default 10s), DOCTORS (default 50), PATIENTS (default 200), MAX_VUS
// (default 512). Setup creates doctors open around the clock in 5-minute
// slots a year ahead and registers patients, so run the server with
// AUTH_RATE_LIMIT raised and PRESCRIPTO_BCRYPT_COST=4.
import http from 'k6/http';
import exec from 'k6/execution';
import { check, fail } from 'k6';

const BASE = (__ENV.BASE || 'http://127.0.0.1:8080').replace(/\/$/, '');
const RATE = parseInt(__ENV.RATE || '2000', 10);
const DURATION = __ENV.DURATION || '10s';
const DOCTORS = parseInt(__ENV.DOCTORS || '50', 10);
const PATIENTS = parseInt(__ENV.PATIENTS || '200', 10);
const MAX_VUS = parseInt(__ENV.MAX_VUS || '512', 10);
const SLOT_MS = 5 * 60 * 1000;

if (!/^https?:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/.test(BASE)) {
  throw new Error(`BASE must be a loopback URL, got ${BASE}`);
}

// Read in the init context (open() is only allowed there).
const CREDS = __ENV.DATA ? open(`${__ENV.DATA}/demo-credentials`) : '';

export const options = {
  setupTimeout: '120s',
  scenarios: {
    book: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: Math.min(MAX_VUS, 128),
      maxVUs: MAX_VUS,
    },
  },
  thresholds: {
    'http_req_duration{scenario:book}': ['p(99)<20'],
    'checks{scenario:book}': ['rate>0.99'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(99)', 'max'],
};

function admin() {
  let email = __ENV.ADMIN_EMAIL;
  let password = __ENV.ADMIN_PASSWORD;
  for (const line of CREDS.split('\n')) {
    const [k, v] = [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)];
    if (k === 'admin_email' && !email) email = v;
    if (k === 'admin_password' && !password) password = v;
  }
  if (!email || !password) fail('no admin login: set DATA (demo-credentials) or ADMIN_EMAIL/ADMIN_PASSWORD');
  return { email, password };
}

const json = { headers: { 'Content-Type': 'application/json' } };
const auth = (token) => ({ headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` } });

export function setup() {
  const login = http.post(`${BASE}/api/v1/auth/login`, JSON.stringify(admin()), json);
  if (login.status !== 200) fail(`admin login: ${login.status} ${login.body}`);
  const adminToken = login.json('token');
  const run = Date.now().toString(36);
  const weekly = [1, 2, 3, 4, 5, 6, 7].map((weekday) => ({ weekday, start: '00:00', end: '24:00' }));
  const doctors = [];
  for (let i = 0; i < DOCTORS; i++) {
    const res = http.post(`${BASE}/api/v1/admin/doctors`, JSON.stringify({
      name: `Dr. K6 ${run}-${i}`, email: `k6-${run}-d${i}@load.example`, password: `k6-pass-${run}`,
      speciality: 'General physician', degree: 'MBBS', experienceYears: 5, about: 'Created by k6.',
      fees: 50000, currency: 'INR', address: '127.0.0.1', timezone: 'UTC',
      schedule: { timezone: 'UTC', slotMinutes: 5, bookingWindowDays: 365, minNoticeMinutes: 0, paymentPolicy: 'none', holdMinutes: 0, weekly },
    }), auth(adminToken));
    if (res.status !== 201) fail(`create doctor ${i}: ${res.status} ${res.body}`);
    doctors.push(res.json('id'));
  }
  const patients = [];
  for (let i = 0; i < PATIENTS; i++) {
    const res = http.post(`${BASE}/api/v1/auth/register`, JSON.stringify({
      name: `K6 Patient ${i}`, email: `k6-${run}-p${i}@load.example`, password: `k6-pass-${run}`,
    }), json);
    if (res.status !== 201) fail(`register patient ${i}: ${res.status} ${res.body} (raise AUTH_RATE_LIMIT)`);
    patients.push(res.json('token'));
  }
  // First slot: an hour from now on the 5-minute grid.
  const slot0 = Math.floor(Date.now() / SLOT_MS) * SLOT_MS + 3600 * 1000;
  return { doctors, patients, slot0 };
}

export default function (data) {
  // A distinct index per iteration across all VUs: doctor i % D, and that
  // doctor's (i / D)-th slot, so no two requests ask for the same slot.
  const i = exec.scenario.iterationInTest;
  const d = i % data.doctors.length;
  const start = new Date(data.slot0 + Math.floor(i / data.doctors.length) * SLOT_MS).toISOString().replace('.000Z', 'Z');
  const res = http.post(`${BASE}/api/v1/appointments`, JSON.stringify({ doctorId: data.doctors[d], start }),
    auth(data.patients[i % data.patients.length]));
  check(res, { 'booked (201)': (r) => r.status === 201 });
}
