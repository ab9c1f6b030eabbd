// upbroker.js: the browser client of upbroker. A dependency-free ES module,
// served by the broker at /v1/client.js (types at /v1/client.d.ts).
//
//   import { Upbroker } from '/v1/client.js';
//   const up = new Upbroker({ baseURL: 'https://uploads.example.com', token });
//   const { key, url } = await up.upload(file, { profile: 'images', onProgress });
//
// It asks the broker for a grant, sends the bytes straight to the store (one
// PUT, one POST form, or parts in parallel), and tells the broker it is done.

const DEFAULT_CONCURRENCY = 4;
const PART_TRIES = 3;
const RETRY_BASE_MS = 500;
// Part URLs are fetched lazily in batches, so that a long upload does not
// hold URLs that expire before their turn comes.
const PARTS_BATCH = 8;

// Headers that a browser sets itself; scripts may not set them, and trying
// only prints a console warning, so they are never sent by hand.
const FORBIDDEN_HEADERS = new Set([
  'accept-charset', 'accept-encoding', 'access-control-request-headers',
  'access-control-request-method', 'connection', 'content-length', 'cookie',
  'cookie2', 'date', 'dnt', 'expect', 'host', 'keep-alive', 'origin',
  'referer', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'via',
]);

function isForbiddenHeader(name) {
  const n = name.toLowerCase();
  return FORBIDDEN_HEADERS.has(n) || n.startsWith('proxy-') || n.startsWith('sec-');
}

// Codes for statuses that came from a store (which does not speak upbroker's
// JSON errors), so that callers can switch on err.code either way.
const STATUS_CODES = {
  400: 'invalid_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found',
  405: 'method_not_allowed', 409: 'not_uploaded', 410: 'expired', 412: 'exists',
  413: 'too_large', 415: 'unsupported_type', 422: 'rejected', 429: 'rate_limited',
  500: 'internal', 503: 'backend_unavailable',
};

/** An error from the broker's API or from the store. */
export class UpbrokerError extends Error {
  constructor(message, { code = 'error', status = 0, field, retryAfter, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'UpbrokerError';
    this.code = code;
    this.status = status;
    if (field) this.field = field;
    if (retryAfter !== undefined) this.retryAfter = retryAfter;
  }
}

function abortError(signal) {
  if (signal && signal.reason !== undefined) return signal.reason;
  return new DOMException('The upload was aborted.', 'AbortError');
}

export function isAbortError(err) {
  return !!err && err.name === 'AbortError';
}

// errorFromBody turns an error response into an UpbrokerError: upbroker's
// JSON body when there is one, an S3-style XML <Code>/<Message> otherwise.
export function errorFromBody(status, text, contentType, retryAfterHeader) {
  const fallback = STATUS_CODES[status] || (status >= 500 ? 'internal' : 'error');
  let code = fallback;
  let message = '';
  let field;
  if ((contentType || '').includes('json') || /^\s*\{/.test(text || '')) {
    try {
      const body = JSON.parse(text);
      const e = body && body.error;
      if (e && typeof e === 'object') {
        code = e.code || fallback;
        message = e.message || '';
        field = e.field || undefined;
      } else if (typeof e === 'string') {
        message = e;
      }
    } catch (_) { /* not JSON after all */ }
  } else if (text) {
    const m = /<Message>([^<]*)<\/Message>/.exec(text);
    if (m) message = m[1];
    const c = /<Code>([^<]*)<\/Code>/.exec(text);
    if (c && c[1] === 'EntityTooLarge') code = 'too_large';
    else if (c && c[1] === 'AccessDenied' && status === 403) code = 'forbidden';
  }
  if (!message) message = `request failed with status ${status}`;
  let retryAfter;
  if (retryAfterHeader) {
    const n = Number(retryAfterHeader);
    if (Number.isFinite(n)) retryAfter = n;
  }
  return new UpbrokerError(message, { code, status, field, retryAfter });
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) return reject(abortError(signal));
    const t = setTimeout(() => { cleanup(); resolve(); }, ms);
    const onAbort = () => { clearTimeout(t); cleanup(); reject(abortError(signal)); };
    const cleanup = () => signal && signal.removeEventListener('abort', onAbort);
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
  });
}

// retryable tells whether a failed part is worth another try: the network
// failed, the store was busy or broke, or the part URL expired.
function retryable(err) {
  if (isAbortError(err) || !(err instanceof UpbrokerError)) return false;
  const s = err.status;
  return s === 0 || s === 403 || s === 408 || s === 429 || s >= 500;
}

// send performs one request against the store with XMLHttpRequest, which
// (unlike fetch) reports upload progress. It resolves with the XHR on 2xx.
export function send({ method, url, headers, body, signal, onProgress }) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) return reject(abortError(signal));
    const xhr = new XMLHttpRequest();
    xhr.open(method, url, true);
    for (const [k, v] of Object.entries(headers || {})) {
      if (!isForbiddenHeader(k)) xhr.setRequestHeader(k, v);
    }
    const onAbort = () => xhr.abort();
    const done = () => signal && signal.removeEventListener('abort', onAbort);
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
    if (onProgress) {
      xhr.upload.addEventListener('progress', (ev) => {
        if (ev.lengthComputable) onProgress(ev.loaded, ev.total);
      });
    }
    xhr.addEventListener('load', () => {
      done();
      if (xhr.status >= 200 && xhr.status < 300) return resolve(xhr);
      reject(errorFromBody(xhr.status, xhr.responseText,
        xhr.getResponseHeader('Content-Type'), xhr.getResponseHeader('Retry-After')));
    });
    xhr.addEventListener('error', () => {
      done();
      reject(new UpbrokerError(`network error sending to ${new URL(url, location.href).host}`, { code: 'network', status: 0 }));
    });
    xhr.addEventListener('timeout', () => {
      done();
      reject(new UpbrokerError('the store did not answer in time', { code: 'network', status: 0 }));
    });
    xhr.addEventListener('abort', () => { done(); reject(abortError(signal)); });
    xhr.send(body);
  });
}

export class Upbroker {
  /**
   * @param {object} [opts]
   * @param {string} [opts.baseURL] where the broker is; '' means this page's origin
   * @param {string} [opts.token] sent as Authorization: Bearer <token>
   * @param {() => (string|Promise<string>)} [opts.getToken] called before each API request
   * @param {Record<string,string>} [opts.headers] extra headers for API requests
   */
  constructor({ baseURL = '', token, getToken, headers = {} } = {}) {
    this.baseURL = String(baseURL).replace(/\/+$/, '');
    this.token = token;
    this.getToken = getToken;
    this.headers = { ...headers };
  }

  _url(path) {
    return new URL(this.baseURL + path, typeof location !== 'undefined' ? location.href : undefined).href;
  }

  async _apiHeaders(json) {
    const h = { Accept: 'application/json', ...this.headers };
    if (json) h['Content-Type'] = 'application/json';
    const token = this.getToken ? await this.getToken() : this.token;
    if (token) h.Authorization = `Bearer ${token}`;
    return h;
  }

  // api calls one of the broker's own routes and decodes its JSON answer.
  async _api(method, url, body, signal) {
    const init = { method, headers: await this._apiHeaders(body !== undefined), signal };
    if (body !== undefined) init.body = JSON.stringify(body);
    let res;
    try {
      res = await fetch(url, init);
    } catch (err) {
      if (isAbortError(err)) throw err;
      throw new UpbrokerError(`cannot reach upbroker: ${err.message}`, { code: 'network', status: 0, cause: err });
    }
    const text = await res.text();
    if (!res.ok) {
      throw errorFromBody(res.status, text, res.headers.get('Content-Type'), res.headers.get('Retry-After'));
    }
    return text ? JSON.parse(text) : null;
  }

  /** Asks for a grant without uploading: the raw answer of POST /v1/uploads. */
  createUpload(file, { profile, metadata, signal } = {}) {
    const req = {
      filename: file.name || 'blob',
      content_type: file.type || 'application/octet-stream',
      size: file.size,
    };
    if (profile) req.profile = profile;
    if (metadata && Object.keys(metadata).length) req.metadata = metadata;
    return this._api('POST', this._url('/v1/uploads'), req, signal);
  }

  /** Aborts an upload: DELETE /v1/uploads/{id}. */
  async abort(id) {
    await this._api('DELETE', this._url(`/v1/uploads/${encodeURIComponent(id)}`));
  }

  /**
   * Uploads one File or Blob and resolves with the completed object.
   * @returns {Promise<{key:string,size:number,content_type:string,url:string,etag?:string}>}
   */
  async upload(file, { profile, metadata, onProgress, signal, concurrency = DEFAULT_CONCURRENCY } = {}) {
    if (signal && signal.aborted) throw abortError(signal);
    const grant = await this._grant(file, { profile, metadata, signal });

    // inner stops every request of this upload, whether the caller
    // aborted or one part failed for good.
    const inner = new AbortController();
    const onAbort = () => inner.abort(abortError(signal));
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
    const total = file.size;
    const report = (loaded) => {
      if (onProgress) onProgress({ loaded: Math.min(loaded, total), total });
    };
    try {
      let complete;
      if (grant.multipart) {
        const parts = await this._multipart(file, grant, inner.signal, report, Math.max(1, concurrency | 0));
        complete = { parts };
      } else if (grant.upload) {
        await this._single(file, grant.upload, inner.signal, report);
        complete = {};
      } else {
        throw new UpbrokerError('the grant has neither upload nor multipart', { code: 'internal', status: 0 });
      }
      report(total);
      const url = new URL(grant.complete_url, this._url('/')).href;
      return await this._api('POST', url, complete, inner.signal);
    } catch (err) {
      if (!inner.signal.aborted) inner.abort(err);
      // Leave nothing behind: the multipart upload, or whatever the
      // single request stored, is dropped. Best effort: the original
      // error is what the caller needs to see.
      try { await this.abort(grant.id); } catch (_) { /* already gone or unreachable */ }
      if (signal && signal.aborted) throw abortError(signal);
      throw err;
    } finally {
      if (signal) signal.removeEventListener('abort', onAbort);
    }
  }

  // _grant asks for the grant. The request itself is not aborted with the
  // signal: the broker may already have started a multipart upload, and
  // only its answer tells which one to drop.
  _grant(file, { profile, metadata, signal }) {
    const p = this.createUpload(file, { profile, metadata });
    if (!signal) return p;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        reject(abortError(signal));
        p.then((g) => this.abort(g.id)).catch(() => {});
      };
      signal.addEventListener('abort', onAbort, { once: true });
      p.then((g) => { signal.removeEventListener('abort', onAbort); if (!signal.aborted) resolve(g); },
        (e) => { signal.removeEventListener('abort', onAbort); reject(e); });
    });
  }

  async _single(file, up, signal, report) {
    const method = (up.method || 'PUT').toUpperCase();
    let body;
    if (method === 'POST') {
      // A POST policy form: every granted field first, the file last,
      // because S3 ignores fields that come after the file.
      body = new FormData();
      for (const [k, v] of Object.entries(up.fields || {})) body.append(k, v);
      body.append('file', file, file.name || 'blob');
    } else {
      // A typeless view of the bytes, so the browser adds no Content-Type
      // of its own: only the granted headers go out.
      body = file.slice(0, file.size);
    }
    await send({
      method, url: up.url, headers: up.headers, body, signal,
      // A form's total includes its fields; scale to the file's bytes.
      onProgress: (loaded, total) => report(total ? (loaded / total) * file.size : loaded),
    });
  }

  async _multipart(file, grant, signal, report, concurrency) {
    const { part_size: partSize, part_count: count, parts_url: partsURL } = grant.multipart;
    const loaded = new Array(count + 1).fill(0);
    const sum = () => loaded.reduce((a, b) => a + b, 0);
    const batches = new Map();
    const fetchParts = (first, last) => {
      const u = new URL(partsURL, this._url('/'));
      u.searchParams.set('numbers', first === last ? String(first) : `${first}-${last}`);
      return this._api('GET', u.href, undefined, signal).then((r) => {
        const m = new Map();
        for (const p of r.parts || []) m.set(p.number, p);
        return m;
      });
    };
    const partInfo = async (n, fresh) => {
      if (fresh) return (await fetchParts(n, n)).get(n);
      const b = Math.floor((n - 1) / PARTS_BATCH);
      if (!batches.has(b)) {
        const first = b * PARTS_BATCH + 1;
        const pr = fetchParts(first, Math.min(count, first + PARTS_BATCH - 1));
        pr.catch(() => batches.delete(b));
        batches.set(b, pr);
      }
      return (await batches.get(b)).get(n);
    };
    const uploadPart = async (n) => {
      const start = (n - 1) * partSize;
      const blob = file.slice(start, Math.min(start + partSize, file.size));
      let fresh = false;
      for (let attempt = 1; ; attempt++) {
        try {
          const p = await partInfo(n, fresh);
          if (!p) throw new UpbrokerError(`the broker gave no URL for part ${n}`, { code: 'internal', status: 0 });
          const xhr = await send({
            method: p.method || 'PUT', url: p.url, headers: p.headers, body: blob, signal,
            onProgress: (l) => { loaded[n] = l; report(sum()); },
          });
          loaded[n] = blob.size;
          report(sum());
          const etag = xhr.getResponseHeader('ETag');
          if (!etag) {
            throw new UpbrokerError('the store\'s ETag header cannot be read: its CORS settings must expose ETag', { code: 'etag_unreadable', status: 0 });
          }
          return { number: n, etag };
        } catch (err) {
          loaded[n] = 0;
          report(sum());
          if (attempt >= PART_TRIES || !retryable(err)) throw err;
          // An expired URL is the likely 403: ask for a fresh one.
          fresh = err.status === 403;
          await sleep(RETRY_BASE_MS * 2 ** (attempt - 1), signal);
        }
      }
    };
    const parts = new Array(count);
    let next = 1;
    const worker = async () => {
      while (next <= count && !signal.aborted) {
        const n = next++;
        parts[n - 1] = await uploadPart(n);
      }
    };
    const workers = [];
    for (let i = 0; i < Math.min(concurrency, count); i++) workers.push(worker());
    // The first failure stops the others at once (the caller aborts inner).
    await Promise.all(workers);
    if (signal.aborted) throw abortError(signal);
    return parts;
  }
}

export default Upbroker;
