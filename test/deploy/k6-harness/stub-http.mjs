import { handle } from './fake-api.mjs';
import { state } from './state.mjs';

function toText(body) {
  if (body === undefined || body === null) return '';
  if (typeof body === 'string') return body;
  throw new Error('the stub only sends string bodies (JSON.stringify first)');
}

export function request(method, url, body, params = {}) {
  const headers = {};
  for (const [k, v] of Object.entries(params.headers ?? {})) headers[k.toLowerCase()] = String(v);
  const req = { method: method.toUpperCase(), url, body: toText(body), headers, tags: params.tags ?? {} };
  state.requests.push(req);
  const res = handle(req);
  return {
    status: res.status,
    body: res.body,
    headers: res.headers ?? {},
    timings: { duration: 1 },
    request: req,
  };
}

export function get(url, params) {
  return request('GET', url, null, params);
}
export function post(url, body, params) {
  return request('POST', url, body, params);
}
export function put(url, body, params) {
  return request('PUT', url, body, params);
}
export function del(url, body, params) {
  return request('DELETE', url, body, params);
}

export function batch(requests) {
  if (!Array.isArray(requests)) throw new Error('the stub supports http.batch with an array');
  return requests.map((r) => {
    if (Array.isArray(r)) return request(r[0], r[1], r[2], r[3]);
    return request(r.method ?? 'GET', r.url, r.body, r.params);
  });
}

export function expectedStatuses(...statuses) {
  for (const s of statuses) if (!Number.isInteger(s) && typeof s !== 'object') throw new Error(`status ${s}`);
  return { statuses };
}

export function setResponseCallback(cb) {
  state.responseCallback = cb;
}

export default { request, get, post, put, del, batch, expectedStatuses, setResponseCallback };
