# Sourced by scripts/test-deps.sh, which defines npm_pkg. Installs the npm
# packages of the browser tests (e2e/) into .cache/npm/<folder>.
#
# Uppy: @uppy/core and @uppy/aws-s3, each major in its own folder, because
# each @uppy/aws-s3 has a peer dependency on its own @uppy/core major. Their
# ESM builds import CommonJS packages (lodash, classnames, mime-match), so
# they do not load in a browser without a bundler; the test pages in
# testdata/uppy/ load the prebuilt bundle of the `uppy` package instead
# (dist/uppy.min.mjs). The versions of @uppy/core and @uppy/aws-s3 are the
# ones that `uppy` pins, so the source in node_modules/@uppy/aws-s3/lib is
# the code inside the bundle (README.md, "What Uppy sends", describes its
# requests).
npm_pkg uppy6 uppy@6.0.1 @uppy/core@6.0.1 @uppy/aws-s3@6.1.0
npm_pkg uppy5 uppy@5.2.4 @uppy/core@5.2.0 @uppy/aws-s3@5.1.0
