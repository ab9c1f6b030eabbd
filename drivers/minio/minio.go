// Package minio is the driver for MinIO and other S3-compatible stores,
// built on minio-go. Like the s3 driver, it presigns uploads with SigV4 so
// the store itself checks type, exact length, If-None-Match and checksum;
// it differs in its client library and its defaults (an endpoint is
// required, buckets are addressed by path on non-AWS hosts).
package minio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/drivers/s3compat"
)

// Spec is the minio driver's entry in the registry.
var Spec = drivers.Spec{
	Name:     "minio",
	Keys:     []string{"bucket", "region", "endpoint", "public_endpoint", "access_key", "secret_key", "session_token"},
	Required: []string{"bucket", "endpoint"},
	Secret:   []string{"secret_key", "session_token"},
	Open:     Open,
}

func init() { drivers.Register(Spec) }

// Open reads the settings and builds the clients; it does not reach the
// store. Without access_key and secret_key, credentials come from the
// environment (AWS_* or MINIO_*), ~/.aws/credentials, or an IAM role.
func Open(ctx context.Context, s drivers.Settings, env drivers.Env) (drivers.Driver, error) {
	set, err := s3compat.Parse(s)
	if err != nil {
		return nil, err
	}
	if set.Endpoint == nil {
		return nil, fmt.Errorf("%w: endpoint: required by driver \"minio\"", drivers.ErrConfig)
	}
	var creds *credentials.Credentials
	if set.AccessKey != "" {
		creds = credentials.NewStaticV4(set.AccessKey, set.SecretKey, set.SessionToken)
	} else {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.EnvMinio{},
			&credentials.FileAWSCredentials{},
			&credentials.IAM{},
		})
	}
	d, err := newDriver(set, creds, env.Logger)
	if err != nil {
		return nil, fmt.Errorf("%w: backend %q: %w", drivers.ErrConfig, env.Backend, err)
	}
	return d, nil
}

// Driver is one bucket. It is safe for concurrent use.
type Driver struct {
	set    s3compat.Settings
	where  string
	core   minio.Core    // endpoint: the broker's own calls
	signer *minio.Client // public_endpoint: signed into clients' URLs
	// fast signs PUT, part and GET grants without building and parsing
	// an http.Request and deriving the signing key on every call; nil
	// when the bucket is one it does not handle, and then signer signs.
	fast *s3compat.Presigner
	// stat is the fast Stat: a HEAD presigned like fast's grants but on
	// endpoint, sent by its own keep-alive client; nil when the fast
	// path is off for this bucket, and then core stats.
	stat  *s3compat.StatClient
	creds *credentials.Credentials
	log   *slog.Logger
	now   func() time.Time
}

var (
	_ drivers.Driver        = (*Driver)(nil)
	_ drivers.Multipart     = (*Driver)(nil)
	_ drivers.PostPresigner = (*Driver)(nil)
	_ drivers.Lister        = (*Driver)(nil)
)

func newClient(u *url.URL, set s3compat.Settings, creds *credentials.Credentials) (*minio.Client, error) {
	return minio.New(u.Host, &minio.Options{
		Creds:  creds,
		Secure: u.Scheme == "https",
		// A known region spares every presign a GetBucketLocation call.
		Region: set.Region,
		// minio-go retries ten times by default: a store that is down
		// should fail a request in seconds, not in a minute.
		MaxRetries: 3,
	})
}

func newDriver(set s3compat.Settings, creds *credentials.Credentials, log *slog.Logger) (*Driver, error) {
	if log == nil {
		log = slog.Default()
	}
	c, err := newClient(set.Endpoint, set, creds)
	if err != nil {
		return nil, fmt.Errorf("endpoint: %w", err)
	}
	signer := c
	if set.PublicEndpoint != nil {
		if signer, err = newClient(set.PublicEndpoint, set, creds); err != nil {
			return nil, fmt.Errorf("public_endpoint: %w", err)
		}
	}
	d := &Driver{
		set:    set,
		where:  "minio " + set.Describe(),
		core:   minio.Core{Client: c},
		signer: signer,
		fast:   fastPresigner(set, set.SigningEndpoint(), log),
		creds:  creds,
		log:    log,
		now:    time.Now,
	}
	statSigner := d.fast
	if set.PublicEndpoint != nil {
		statSigner = fastPresigner(set, set.Endpoint, log)
	}
	// The transport minio-go builds for itself, so the fast HEAD has
	// the SDK's timeouts, proxy and TLS settings.
	tr, err := minio.DefaultTransport(set.Endpoint.Scheme == "https")
	if err != nil {
		return nil, fmt.Errorf("endpoint: %w", err)
	}
	d.stat = s3compat.NewStatClient(statSigner, s3compat.StatTransport(tr), d.where, minio.NoSuchKey)
	return d, nil
}

// fastPresigner resolves, once, the URL at which minio-go addresses the
// bucket on ep, the signing endpoint or the broker's own (path-style for MinIO, virtual-host for
// AWS and Google hosts, default ports dropped) by presigning a probe key
// with probe credentials, and builds the fast signer on that address. It
// returns nil, and grants are signed by minio-go, when minio-go signs
// this bucket in a way the fast path does not repeat.
func fastPresigner(set s3compat.Settings, ep *url.URL, log *slog.Logger) *s3compat.Presigner {
	if strings.HasSuffix(set.Bucket, "--x-s3") {
		return nil // S3 Express directory buckets sign with session keys
	}
	probe, err := newClient(ep, set, credentials.NewStaticV4("probe", "probe", ""))
	if err == nil {
		var u *url.URL
		// No network: the region is configured and the credentials static.
		if u, err = probe.Presign(context.Background(), http.MethodGet, set.Bucket, s3compat.ProbeKey, time.Minute, nil); err == nil {
			var p *s3compat.Presigner
			if p, err = s3compat.NewPresigner(u, set.Region); err == nil {
				return p
			}
		}
	}
	log.Debug("minio: minio-go signs for this endpoint", "endpoint", ep.Host, "bucket", set.Bucket, "reason", err)
	return nil
}

// Capabilities of MinIO, which implements S3's signatures.
func (d *Driver) Capabilities() drivers.Capabilities { return s3compat.Capabilities() }

// expiry clamps a grant to the credentials' own life. It returns the
// credentials too, read from minio-go's cache on every grant so that
// rotated keys sign from the moment the provider has them.
func (d *Driver) expiry(now time.Time, want time.Duration) (time.Duration, time.Time, credentials.Value, error) {
	v, err := d.creds.GetWithContext(nil)
	if err != nil {
		return 0, time.Time{}, v, fmt.Errorf("%w: %s: cannot get credentials: %w", drivers.ErrUnavailable, d.where, err)
	}
	exp, at, err := s3compat.Expiry(now, want, !v.Expiration.IsZero(), v.Expiration)
	return exp, at, v, err
}

// fastSign signs r with the fast path; false means minio-go must (a V2
// or anonymous signer, or a request the fast path leaves to the SDK).
func (d *Driver) fastSign(v credentials.Value, r *s3compat.SignRequest) (string, bool) {
	if d.fast == nil || !v.SignerType.IsV4() || v.SignerType.IsAnonymous() {
		return "", false
	}
	return d.fast.Presign(s3compat.Credentials{AccessKey: v.AccessKeyID, SecretKey: v.SecretAccessKey, SessionToken: v.SessionToken}, r)
}

// PresignPut signs a PUT of exactly c.Size bytes of c.ContentType.
func (d *Driver) PresignPut(ctx context.Context, key string, c drivers.Constraints) (drivers.Grant, error) {
	if err := s3compat.CheckPut(c); err != nil {
		return drivers.Grant{}, err
	}
	now := d.now()
	exp, at, creds, err := d.expiry(now, c.Expires)
	if err != nil {
		return drivers.Grant{}, err
	}
	headers := s3compat.PutHeaders(c)
	// minio-go signs Content-Length even when it is 0.
	var hs [8]s3compat.Header
	if u, ok := d.fastSign(creds, &s3compat.SignRequest{
		Method:  http.MethodPut,
		Key:     key,
		Headers: s3compat.PutSignedHeaders(hs[:0], c, true),
		Expires: exp,
		Time:    now,
	}); ok {
		return drivers.Grant{Method: http.MethodPut, URL: u, Headers: headers, ExpiresAt: at, Enforced: s3compat.PutEnforced(c)}, nil
	}
	h := make(http.Header, len(headers)+1)
	for k, v := range headers {
		h[http.CanonicalHeaderKey(k)] = []string{v}
	}
	// Signed like any header: MinIO compares it with the request's real
	// length, so a different body size fails the signature.
	h["Content-Length"] = []string{strconv.FormatInt(c.Size, 10)}
	u, err := d.signer.PresignHeader(ctx, http.MethodPut, d.set.Bucket, key, exp, nil, h)
	if err != nil {
		return drivers.Grant{}, fmt.Errorf("presign put %q on %s: %w", key, d.where, err)
	}
	return drivers.Grant{
		Method:    http.MethodPut,
		URL:       u.String(),
		Headers:   headers,
		ExpiresAt: at,
		Enforced:  s3compat.PutEnforced(c),
	}, nil
}

// PresignPost signs a browser form upload with a POST policy.
func (d *Driver) PresignPost(ctx context.Context, key string, c drivers.Constraints) (drivers.Grant, error) {
	if c.MaxSize <= 0 {
		return drivers.Grant{}, fmt.Errorf("%w: a POST policy needs a positive max size", drivers.ErrInvalid)
	}
	exp, at, _, err := d.expiry(d.now(), c.Expires)
	if err != nil {
		return drivers.Grant{}, err
	}
	p := minio.NewPostPolicy()
	for _, err := range []error{
		p.SetBucket(d.set.Bucket),
		p.SetKey(key),
		p.SetExpires(at),
		p.SetContentLengthRange(0, c.MaxSize),
	} {
		if err != nil {
			return drivers.Grant{}, fmt.Errorf("%w: post policy for %q: %w", drivers.ErrInvalid, key, err)
		}
	}
	if c.ContentType != "" {
		if err := p.SetContentType(c.ContentType); err != nil {
			return drivers.Grant{}, fmt.Errorf("%w: post policy content type: %w", drivers.ErrInvalid, err)
		}
	}
	keys := make([]string, 0, len(c.Metadata))
	for k := range c.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := p.SetUserMetadata(k, c.Metadata[k]); err != nil {
			return drivers.Grant{}, fmt.Errorf("%w: post policy metadata %q: %w", drivers.ErrInvalid, k, err)
		}
	}
	_ = exp // the policy carries its own expiration time, at
	u, fields, err := d.signer.PresignedPostPolicy(ctx, p)
	if err != nil {
		return drivers.Grant{}, fmt.Errorf("presign post %q on %s: %w", key, d.where, err)
	}
	return drivers.Grant{
		Method:    http.MethodPost,
		URL:       u.String(),
		Headers:   map[string]string{},
		Fields:    fields,
		ExpiresAt: at,
		Enforced:  s3compat.PostEnforced(c),
	}, nil
}

// PresignGet signs a download, offering o.Filename to browsers.
func (d *Driver) PresignGet(ctx context.Context, key string, o drivers.GetOptions) (drivers.Grant, error) {
	now := d.now()
	exp, at, creds, err := d.expiry(now, o.Expires)
	if err != nil {
		return drivers.Grant{}, err
	}
	var q url.Values
	var fq []s3compat.Param
	if cd := s3compat.ContentDisposition(o.Filename); cd != "" {
		q = url.Values{"response-content-disposition": {cd}}
		fq = []s3compat.Param{{Name: "response-content-disposition", Value: cd}}
	}
	if u, ok := d.fastSign(creds, &s3compat.SignRequest{Method: http.MethodGet, Key: key, Query: fq, Expires: exp, Time: now}); ok {
		return drivers.Grant{Method: http.MethodGet, URL: u, Headers: map[string]string{}, ExpiresAt: at}, nil
	}
	u, err := d.signer.PresignedGetObject(ctx, d.set.Bucket, key, exp, q)
	if err != nil {
		return drivers.Grant{}, fmt.Errorf("presign get %q on %s: %w", key, d.where, err)
	}
	return drivers.Grant{Method: http.MethodGet, URL: u.String(), Headers: map[string]string{}, ExpiresAt: at}, nil
}

// Stat reads an object's size, type, ETag, metadata and checksum. The
// fast HEAD answers when it can; minio-go answers the rest.
func (d *Driver) Stat(ctx context.Context, key string) (drivers.ObjectInfo, error) {
	info, err := d.fastStat(ctx, key)
	if err == nil {
		return info, nil
	}
	var fb *s3compat.Fallback
	if !errors.As(err, &fb) {
		return info, err
	}
	if d.stat != nil {
		d.log.DebugContext(ctx, "minio: stat by minio-go", "bucket", d.set.Bucket, "reason", fb.Reason)
	}
	return d.sdkStat(ctx, key)
}

// fastStat is Stat through the fast HEAD alone; a *s3compat.Fallback
// error means minio-go must answer.
func (d *Driver) fastStat(ctx context.Context, key string) (drivers.ObjectInfo, error) {
	if d.stat == nil {
		return drivers.ObjectInfo{}, &s3compat.Fallback{Reason: "no fast path for this endpoint"}
	}
	v, err := d.creds.GetWithContext(nil)
	if err != nil || !v.SignerType.IsV4() || v.SignerType.IsAnonymous() {
		// minio-go reports the credential failure in its own words.
		return drivers.ObjectInfo{}, &s3compat.Fallback{Reason: "credentials are not SigV4"}
	}
	return d.stat.Stat(ctx, s3compat.Credentials{AccessKey: v.AccessKeyID, SecretKey: v.SecretAccessKey, SessionToken: v.SessionToken}, key, d.now())
}

// sdkStat is Stat through minio-go, with its retries.
func (d *Driver) sdkStat(ctx context.Context, key string) (drivers.ObjectInfo, error) {
	o, err := d.core.StatObject(ctx, d.set.Bucket, key, minio.StatObjectOptions{Checksum: true})
	if err != nil {
		return drivers.ObjectInfo{}, d.mapErr("stat", key, err)
	}
	info := drivers.ObjectInfo{
		Key:            key,
		Size:           o.Size,
		ContentType:    o.ContentType,
		ETag:           s3compat.TrimETag(o.ETag),
		Metadata:       make(map[string]string, len(o.UserMetadata)),
		ModTime:        o.LastModified,
		ChecksumSHA256: s3compat.WholeChecksum(o.ChecksumSHA256),
	}
	for k, v := range o.UserMetadata {
		info.Metadata[s3compat.MetaKey(k)] = v
	}
	return info, nil
}

// ReadRange reads up to n bytes at off; past the end it returns nothing.
func (d *Driver) ReadRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if off < 0 || n <= 0 {
		return nil, fmt.Errorf("%w: range %d+%d", drivers.ErrInvalid, off, n)
	}
	var opts minio.GetObjectOptions
	if err := opts.SetRange(off, off+n-1); err != nil {
		return nil, fmt.Errorf("%w: range %d+%d: %w", drivers.ErrInvalid, off, n, err)
	}
	body, _, _, err := d.core.GetObject(ctx, d.set.Bucket, key, opts)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "InvalidRange" {
			return []byte{}, nil // empty object, or off past its end
		}
		return nil, d.mapErr("read", key, err)
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, n))
	if err != nil {
		return nil, d.mapErr("read", key, err)
	}
	return b, nil
}

// Delete removes key; a missing key is not an error.
func (d *Driver) Delete(ctx context.Context, key string) error {
	err := d.core.RemoveObject(ctx, d.set.Bucket, key, minio.RemoveObjectOptions{})
	if err != nil {
		err = d.mapErr("delete", key, err)
		if errors.Is(err, drivers.ErrNotFound) {
			return nil
		}
		return err
	}
	return nil
}

// Ping checks that the store answers and that the bucket exists.
func (d *Driver) Ping(ctx context.Context) error {
	ok, err := d.core.BucketExists(ctx, d.set.Bucket)
	if err != nil {
		return d.mapErr("ping", "", err)
	}
	if !ok {
		return fmt.Errorf("%w: %s: the bucket does not exist", drivers.ErrUnavailable, d.where)
	}
	return nil
}

// List lists objects under prefix.
func (d *Driver) List(ctx context.Context, prefix string) ([]drivers.ObjectInfo, error) {
	var out []drivers.ObjectInfo
	for o := range d.core.Client.ListObjects(ctx, d.set.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, d.mapErr("list", prefix, o.Err)
		}
		out = append(out, drivers.ObjectInfo{
			Key:     o.Key,
			Size:    o.Size,
			ETag:    s3compat.TrimETag(o.ETag),
			ModTime: o.LastModified,
		})
	}
	return out, nil
}

// Close drops the fast Stat's idle connections; minio-go's close on
// their own.
func (d *Driver) Close() error {
	d.stat.CloseIdleConnections()
	return nil
}

// CreateMultipart starts an upload whose object gets c's type and metadata.
func (d *Driver) CreateMultipart(ctx context.Context, key string, c drivers.Constraints) (string, error) {
	id, err := d.core.NewMultipartUpload(ctx, d.set.Bucket, key, minio.PutObjectOptions{
		ContentType:  c.ContentType,
		UserMetadata: c.Metadata,
	})
	if err != nil {
		return "", d.mapErr("create multipart", key, err)
	}
	return id, nil
}

// PresignPart signs one part; size > 0 pins its exact length.
func (d *Driver) PresignPart(ctx context.Context, key, uploadID string, part int, size int64, expires time.Duration) (drivers.Grant, error) {
	if err := s3compat.CheckPart(part, size); err != nil {
		return drivers.Grant{}, err
	}
	if uploadID == "" {
		return drivers.Grant{}, fmt.Errorf("%w: empty upload id", drivers.ErrInvalid)
	}
	now := d.now()
	exp, at, creds, err := d.expiry(now, expires)
	if err != nil {
		return drivers.Grant{}, err
	}
	q := url.Values{"partNumber": {strconv.Itoa(part)}, "uploadId": {uploadID}}
	enf := drivers.Enforced{Size: drivers.AfterUpload, ContentType: drivers.NotEnforced, Checksum: drivers.NotEnforced, NoOverwrite: drivers.NotEnforced}
	var h http.Header
	if size > 0 {
		h = http.Header{"Content-Length": {strconv.FormatInt(size, 10)}}
		enf.Size = drivers.BySignature
	}
	var hs []s3compat.Header
	if size > 0 {
		hs = []s3compat.Header{{Name: "content-length", Value: h.Get("Content-Length")}}
	}
	if u, ok := d.fastSign(creds, &s3compat.SignRequest{
		Method:  http.MethodPut,
		Key:     key,
		Query:   []s3compat.Param{{Name: "partNumber", Value: strconv.Itoa(part)}, {Name: "uploadId", Value: uploadID}},
		Headers: hs,
		Expires: exp,
		Time:    now,
	}); ok {
		return drivers.Grant{Method: http.MethodPut, URL: u, Headers: map[string]string{}, ExpiresAt: at, Enforced: enf}, nil
	}
	u, err := d.signer.PresignHeader(ctx, http.MethodPut, d.set.Bucket, key, exp, q, h)
	if err != nil {
		return drivers.Grant{}, fmt.Errorf("presign part %d of %q on %s: %w", part, key, d.where, err)
	}
	return drivers.Grant{Method: http.MethodPut, URL: u.String(), Headers: map[string]string{}, ExpiresAt: at, Enforced: enf}, nil
}

// ListParts lists the parts the store holds, by number.
func (d *Driver) ListParts(ctx context.Context, key, uploadID string) ([]drivers.Part, error) {
	var parts []drivers.Part
	marker := 0
	for {
		res, err := d.core.ListObjectParts(ctx, d.set.Bucket, key, uploadID, marker, 1000)
		if err != nil {
			return nil, d.mapErr("list parts", key, err)
		}
		for _, p := range res.ObjectParts {
			parts = append(parts, drivers.Part{Number: p.PartNumber, ETag: s3compat.TrimETag(p.ETag), Size: p.Size})
		}
		if !res.IsTruncated || res.NextPartNumberMarker <= marker {
			break
		}
		marker = res.NextPartNumberMarker
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].Number < parts[j].Number })
	return parts, nil
}

// CompleteMultipart assembles the parts, in number order, and describes
// the object.
func (d *Driver) CompleteMultipart(ctx context.Context, key, uploadID string, parts []drivers.Part) (drivers.ObjectInfo, error) {
	if err := s3compat.CheckParts(parts); err != nil {
		return drivers.ObjectInfo{}, err
	}
	sorted := s3compat.SortedParts(parts)
	done := make([]minio.CompletePart, len(sorted))
	for i, p := range sorted {
		done[i] = minio.CompletePart{PartNumber: p.Number, ETag: s3compat.QuoteETag(p.ETag)}
	}
	if _, err := d.core.CompleteMultipartUpload(ctx, d.set.Bucket, key, uploadID, done, minio.PutObjectOptions{}); err != nil {
		return drivers.ObjectInfo{}, d.mapErr("complete multipart", key, err)
	}
	return d.Stat(ctx, key)
}

// AbortMultipart drops an upload and its parts.
func (d *Driver) AbortMultipart(ctx context.Context, key, uploadID string) error {
	if err := d.core.AbortMultipartUpload(ctx, d.set.Bucket, key, uploadID); err != nil {
		return d.mapErr("abort multipart", key, err)
	}
	return nil
}

func (d *Driver) mapErr(op, key string, err error) error {
	r := minio.ToErrorResponse(err)
	return s3compat.MapError(d.where, op, key, s3compat.StoreError{Code: r.Code, Status: r.StatusCode}, err)
}
