// k6 open-model read load: GET /api/v1/doctors/{id}/slots at a constant
// arrival rate over the doctors the directory lists (the demo catalogue
// when the server runs with --demo).
//
//   k6 run -e BASE=http://127.0.0.1:18480 tests/load/k6/slots.js
//
// Env: BASE (loopback only), RATE (reads/s, default 15000), DURATION
// (default 10s), DAYS (days per read, default 7), MAX_VUS (default 512).
import http from 'k6/http';
import exec from 'k6/execution';
import { check, fail } from 'k6';

const BASE = (__ENV.BASE || 'http://127.0.0.1:8080').replace(/\/$/, '');
const RATE = parseInt(__ENV.RATE || '15000', 10);
const DURATION = __ENV.DURATION || '10s';
const DAYS = parseInt(__ENV.DAYS || '7', 10);
const MAX_VUS = parseInt(__ENV.MAX_VUS || '512', 10);

if (!/^https?:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/.test(BASE)) {
  throw new Error(`BASE must be a loopback URL, got ${BASE}`);
}

export const options = {
  scenarios: {
    slots: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: Math.min(MAX_VUS, 128),
      maxVUs: MAX_VUS,
    },
  },
  thresholds: {
    'http_req_duration{scenario:slots}': ['p(99)<5'],
    'checks{scenario:slots}': ['rate>0.99'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(99)', 'max'],
};

export function setup() {
  const res = http.get(`${BASE}/api/v1/doctors`);
  if (res.status !== 200) fail(`list doctors: ${res.status} ${res.body}`);
  const ids = res.json('doctors').map((d) => d.id);
  if (ids.length === 0) fail('no doctors: start the server with --demo');
  return { ids };
}

export default function (data) {
  const id = data.ids[exec.scenario.iterationInTest % data.ids.length];
  const res = http.get(`${BASE}/api/v1/doctors/${id}/slots?days=${DAYS}`, { tags: { name: 'GET /doctors/{id}/slots' } });
  check(res, { 'slots (200)': (r) => r.status === 200 });
}
