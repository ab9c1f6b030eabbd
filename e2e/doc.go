// Package e2e holds upbroker's tests in a real browser: headless Chromium,
// driven with chromedp, against a broker built in-process with real drivers
// (the file driver, MinIO, fake-gcs-server and Azurite). They cover the
// demo page, upbroker.js and the Uppy Companion endpoints with
// @uppy/aws-s3 6.x and 5.x.
//
// They need Debian's chromium, the MinIO server and the Uppy packages that
// `make test-deps` installs; without them they skip, or fail under
// UPBROKER_INTEGRATION=1.
package e2e
