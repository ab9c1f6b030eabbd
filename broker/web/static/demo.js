// The demo page: picks or drops files, uploads each with upbroker.js, and
// shows progress, a cancel button, errors in words, and the result.
import { Upbroker, isAbortError } from '/v1/client.js';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(n) {
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < UNITS.length - 1) { v /= 1024; i++; }
  const s = i === 0 || Number.isInteger(v) ? String(v) : v.toFixed(1).replace(/\.0$/, '');
  return `${s} ${UNITS[i]}`;
}

// limitFrom finds the size limit in the broker's message ("... exceeds the
// maximum of 10MiB", "size 11534336 is over max_size 10485760"): a size
// written with a unit if there is one, else the smallest plain number that is
// not the file's own size, read as bytes.
export function limitFrom(message, fileSize) {
  const text = String(message || '');
  const withUnit = [...text.matchAll(/(\d+(?:\.\d+)?)\s?(TiB|GiB|MiB|KiB|TB|GB|MB|KB|kB|B)\b/g)];
  if (withUnit.length) {
    const m = withUnit[withUnit.length - 1];
    return `${m[1]} ${m[2]}`;
  }
  const nums = [...text.matchAll(/\b\d+\b/g)].map((m) => Number(m[0])).filter((n) => n > 0 && n !== fileSize);
  if (!nums.length) return '';
  return formatBytes(Math.min(...nums));
}

// describeError says what went wrong in a sentence a user understands.
export function describeError(err, file) {
  const type = (file && file.type) || 'application/octet-stream';
  switch (err && err.code) {
    case 'too_large': {
      const limit = limitFrom(err.message, file && file.size);
      return limit ? `File is larger than ${limit}` : 'File is larger than this profile allows';
    }
    case 'unsupported_type':
      return `Files of type ${type} are not allowed here`;
    case 'unauthorized':
      return 'You need to sign in (or give an API key) to upload';
    case 'forbidden':
      return 'You are not allowed to upload this file here, or the upload link expired';
    case 'expired':
      return 'The upload link expired: try again';
    case 'rejected':
      return `The file's contents do not look like ${type}`;
    case 'rate_limited':
      return err.retryAfter ? `Too many uploads: try again in ${err.retryAfter} s` : 'Too many uploads: try again later';
    case 'not_found':
      return err.field === 'profile' ? 'There is no such profile' : 'Not found';
    case 'invalid_request':
      if (err.field === 'profile') return 'There is no such profile';
      if (err.field === 'size') return 'Empty files cannot be uploaded';
      return `The request was refused: ${err.message}`;
    case 'backend_unavailable':
      return 'The storage cannot be reached right now: try again later';
    case 'network':
      return 'The network failed: check the connection and try again';
    case 'etag_unreadable':
      return "The storage's CORS settings hide the ETag header, so this upload cannot finish";
    default:
      return (err && err.message) || 'The upload failed';
  }
}

function initPage() {
  const $ = (id) => document.getElementById(id);
  const input = $('file-input');
  const zone = $('drop-zone');
  const list = $('uploads');
  const template = $('upload-template');
  const profile = $('profile');
  const token = $('token');
  const status = $('status');

  // ?profile=images preselects a profile; ?profiles=a,b offers a list.
  const params = new URLSearchParams(location.search);
  if (params.get('profile')) profile.value = params.get('profile');
  for (const name of (params.get('profiles') || '').split(',').filter(Boolean)) {
    const o = document.createElement('option');
    o.value = name;
    $('profiles').append(o);
  }
  $('upload-form').addEventListener('submit', (e) => e.preventDefault());

  let counter = 0;
  function start(file) {
    const item = template.content.firstElementChild.cloneNode(true);
    const part = (role) => item.querySelector(`[data-role="${role}"]`);
    const index = counter++;
    item.id = `upload-${index}`;
    item.dataset.index = String(index);
    item.dataset.name = file.name;
    part('name').textContent = file.name;
    part('size').textContent = formatBytes(file.size);
    const bar = part('progress');
    bar.id = `progress-${index}`;
    bar.setAttribute('aria-label', `Progress of ${file.name}`);
    const cancel = part('cancel');
    cancel.setAttribute('aria-label', `Cancel ${file.name}`);
    list.append(item);

    const setState = (state, message) => {
      item.dataset.state = state;
      part('message').textContent = message || '';
      if (message) status.textContent = `${file.name}: ${message}`;
    };
    const setProgress = (pct) => {
      bar.value = pct;
      item.dataset.progress = String(pct);
      part('percent').textContent = `${pct} %`;
    };

    const controller = new AbortController();
    cancel.addEventListener('click', () => {
      cancel.disabled = true;
      setState('cancelling', 'Cancelling…');
      controller.abort();
    });

    const up = new Upbroker({ token: token.value.trim() || undefined });
    setState('uploading');
    up.upload(file, {
      profile: profile.value.trim() || undefined,
      signal: controller.signal,
      onProgress: ({ loaded, total }) => {
        const pct = total ? Math.floor((loaded / total) * 100) : 100;
        setProgress(pct);
        // What the client itself reported, apart from the final 100 %
        // that completion sets: tests read it.
        item.dataset.reported = String(pct);
      },
    }).then((res) => {
      setProgress(100);
      item.dataset.key = res.key;
      const result = part('result');
      if (/^image\//.test(res.content_type)) {
        const img = document.createElement('img');
        img.dataset.role = 'preview';
        img.alt = `Preview of ${file.name}`;
        img.addEventListener('load', () => { img.dataset.loaded = 'true'; });
        img.src = res.url;
        result.append(img);
      }
      const a = document.createElement('a');
      a.dataset.role = 'download';
      a.href = res.url;
      a.textContent = 'Download';
      a.download = file.name;
      result.append(a);
      setState('done', `Uploaded as ${res.key}`);
    }, (err) => {
      if (isAbortError(err)) {
        setState('cancelled', 'Cancelled');
        return;
      }
      item.dataset.code = err.code || 'error';
      part('message').setAttribute('role', 'alert');
      setState('error', describeError(err, file));
    });
  }

  input.addEventListener('change', () => {
    for (const f of input.files) start(f);
    input.value = '';
  });
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    zone.dataset.state = 'over';
  });
  zone.addEventListener('dragleave', () => { zone.dataset.state = 'idle'; });
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.dataset.state = 'idle';
    for (const f of e.dataTransfer.files) start(f);
  });
  document.body.dataset.ready = 'true';
}

if (document.getElementById('uploads')) initPage();
