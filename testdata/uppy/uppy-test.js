// Test page for upbroker's Uppy Companion endpoints. It loads Uppy's
// prebuilt bundle (the package `uppy`, which carries @uppy/core and
// @uppy/aws-s3) and exposes window.uppyUpload(multipart), which uploads the
// files picked in #file-input and resolves with a summary the Go test checks.
const major = new URLSearchParams(location.search).get('v') || '6';
const { Uppy, AwsS3 } = await import(`/test/uppy${major}/uppy.min.mjs`);
document.getElementById('version').textContent = `${major}.x (${Uppy.VERSION}), aws-s3 ${AwsS3.VERSION}`;
const log = (msg) => { document.getElementById('log').textContent += msg + '\n'; };

// The options each major version takes for a Companion server: 6.x
// appends /s3/... to companionEndpoint, 5.x to endpoint.
function s3Options(multipart) {
  const base = major === '6'
    ? { companionEndpoint: location.origin }
    : { endpoint: location.origin };
  return { ...base, shouldUseMultipart: multipart };
}

window.uppyUpload = async (multipart) => {
  const uppy = new Uppy({ autoProceed: false, allowMultipleUploadBatches: true });
  uppy.use(AwsS3, s3Options(multipart));
  const errors = [];
  uppy.on('upload-error', (file, err) => {
    errors.push({ name: file && file.name, error: String(err && (err.message || err)) });
    log(`error ${file && file.name}: ${err && err.message}`);
  });
  uppy.on('upload-success', (file, res) => log(`done ${file.name}: ${JSON.stringify(res && res.body)}`));
  // Uppy 6 clears s3Multipart from a finished file, so count the
  // multipart creations it asks the server for instead.
  let created = 0;
  const realFetch = window.fetch;
  window.fetch = (input, init) => {
    const url = new URL(String((input && input.url) || input), location.href);
    const method = ((init && init.method) || (input && input.method) || 'GET').toUpperCase();
    if (method === 'POST' && url.pathname.endsWith('/s3/multipart')) created++;
    return realFetch(input, init);
  };
  for (const f of document.getElementById('file-input').files) {
    uppy.addFile({ name: f.name, type: f.type, data: f, source: 'test' });
  }
  let result;
  try {
    result = await uppy.upload();
  } finally {
    window.fetch = realFetch;
  }
  const summary = {
    version: Uppy.VERSION,
    successful: (result && result.successful || []).map((f) => ({
      name: f.name,
      size: f.size,
      key: (f.response && f.response.body && f.response.body.key) || (f.s3Multipart && f.s3Multipart.key) || '',
      location: (f.response && (f.response.uploadURL || (f.response.body && f.response.body.location))) || '',
      multipart: created > 0 || !!(f.s3Multipart && f.s3Multipart.uploadId),
    })),
    failed: (result && result.failed || []).map((f) => ({ name: f.name, error: String(f.error || '') })),
    errors,
  };
  uppy.destroy();
  return summary;
};
document.body.dataset.ready = 'true';
