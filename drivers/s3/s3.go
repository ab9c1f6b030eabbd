// Package s3 is the driver for Amazon S3 and S3-compatible stores, built on
// aws-sdk-go-v2. Uploads are presigned with SigV4: the store itself checks
// the declared type, the exact length, If-None-Match and the checksum, so a
// client cannot upload anything but what it was granted.
//
// Two clients are kept: one for endpoint, which the broker uses for Stat,
// Delete and multipart calls, and one for public_endpoint, whose host is
// signed into the URLs that clients get. Presigning makes no network call.
package s3

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

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/drivers/s3compat"
)

// Spec is the s3 driver's entry in the registry.
var Spec = drivers.Spec{
	Name:     "s3",
	Keys:     []string{"bucket", "region", "endpoint", "public_endpoint", "path_style", "access_key", "secret_key", "session_token"},
	Required: []string{"bucket"},
	Secret:   []string{"secret_key", "session_token"},
	Open:     Open,
}

func init() { drivers.Register(Spec) }

// Open reads the settings and builds the clients. Without access_key and
// secret_key, credentials come from the SDK's default chain (environment,
// shared config, web identity, instance role). It does not reach the store.
func Open(ctx context.Context, s drivers.Settings, env drivers.Env) (drivers.Driver, error) {
	set, err := s3compat.Parse(s)
	if err != nil {
		return nil, err
	}
	opts := []func(*config.LoadOptions) error{config.WithRegion(set.Region)}
	if set.AccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(set.AccessKey, set.SecretKey, set.SessionToken)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: backend %q: loading AWS configuration: %w", drivers.ErrConfig, env.Backend, err)
	}
	return newDriver(set, cfg, env.Logger), nil
}

// Driver is one bucket. It is safe for concurrent use.
type Driver struct {
	set     s3compat.Settings
	where   string
	client  *s3.Client
	presign *s3.PresignClient
	// fast signs PUT, part and GET grants without the SDK's middleware
	// stack and endpoint resolution; nil when the bucket's address or
	// signing scheme is one it does not handle, and then presign signs.
	fast *s3compat.Presigner
	// stat is the fast Stat: a HEAD presigned like fast's grants but on
	// endpoint, sent by its own keep-alive client; nil when the fast
	// path is off for this bucket, and then client stats.
	stat  *s3compat.StatClient
	creds aws.CredentialsProvider
	log   *slog.Logger
	now   func() time.Time
}

var (
	_ drivers.Driver        = (*Driver)(nil)
	_ drivers.Multipart     = (*Driver)(nil)
	_ drivers.PostPresigner = (*Driver)(nil)
	_ drivers.Lister        = (*Driver)(nil)
)

func newDriver(set s3compat.Settings, cfg aws.Config, log *slog.Logger) *Driver {
	if log == nil {
		log = slog.Default()
	}
	client := func(ep string, more ...func(*s3.Options)) *s3.Client {
		return s3.NewFromConfig(cfg, append([]func(*s3.Options){func(o *s3.Options) {
			if ep != "" {
				o.BaseEndpoint = aws.String(ep)
			}
			o.UsePathStyle = set.PathStyle
			// The SDK would otherwise add CRC32 trailers and signed
			// checksum-algorithm parameters that a browser cannot satisfy.
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}}, more...)...)
	}
	var ep, pub string
	if set.Endpoint != nil {
		ep = set.Endpoint.String()
	}
	if u := set.SigningEndpoint(); u != nil {
		pub = u.String()
	}
	d := &Driver{
		set:    set,
		where:  "s3 " + set.Describe(),
		client: client(ep),
		creds:  cfg.Credentials,
		log:    log,
		now:    time.Now,
	}
	if pub == ep {
		d.presign = s3.NewPresignClient(d.client)
	} else {
		d.presign = s3.NewPresignClient(client(pub))
	}
	// Probe credentials: the probe must not reach a credential source
	// (an instance role) when the driver opens.
	probeCreds := func(o *s3.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider("probe", "probe", "")
	}
	d.fast = fastPresigner(set, client(pub, probeCreds), log)
	statSigner := d.fast
	if pub != ep {
		statSigner = fastPresigner(set, client(ep, probeCreds), log)
	}
	// The SDK's own transport settings (timeouts, proxy, TLS), cloned;
	// a client the SDK was handed from outside leaves Stat to the SDK.
	if bc, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
		d.stat = s3compat.NewStatClient(statSigner, s3compat.StatTransport(bc.GetTransport()), d.where, "NotFound")
	}
	return d
}

// fastPresigner resolves, once, the URL at which probe, an SDK client
// for one endpoint, addresses the bucket (path-style or virtual-host,
// public_endpoint, endpoint or AWS's regional host) by presigning a
// probe key with it, and builds the fast signer on that address. It
// returns nil, and the SDK signs, when the SDK signs this bucket in a
// way the fast path does not repeat.
func fastPresigner(set s3compat.Settings, probe *s3.Client, log *slog.Logger) *s3compat.Presigner {
	if strings.HasSuffix(set.Bucket, "--x-s3") {
		return nil // S3 Express directory buckets sign with session keys
	}
	req, err := s3.NewPresignClient(probe).PresignGetObject(context.Background(),
		&s3.GetObjectInput{Bucket: aws.String(set.Bucket), Key: aws.String(s3compat.ProbeKey)},
		s3.WithPresignExpires(time.Minute))
	if err == nil {
		var u *url.URL
		if u, err = url.Parse(req.URL); err == nil {
			var p *s3compat.Presigner
			if p, err = s3compat.NewPresigner(u, set.Region); err == nil {
				return p
			}
		}
	}
	log.Debug("s3: the SDK signs for this endpoint", "bucket", set.Bucket, "reason", err)
	return nil
}

// Capabilities of S3 and of stores that implement its signatures.
func (d *Driver) Capabilities() drivers.Capabilities { return s3compat.Capabilities() }

// expiry clamps a grant to the credentials' own life. It returns the
// credentials too, read from the provider's cache on every grant so that
// rotated keys sign from the moment the SDK has them.
func (d *Driver) expiry(ctx context.Context, now time.Time, want time.Duration) (time.Duration, time.Time, aws.Credentials, error) {
	if d.creds == nil {
		return 0, time.Time{}, aws.Credentials{}, fmt.Errorf("%w: %s: no credentials configured", drivers.ErrUnavailable, d.where)
	}
	c, err := d.creds.Retrieve(ctx)
	if err != nil {
		return 0, time.Time{}, c, fmt.Errorf("%w: %s: cannot get credentials: %w", drivers.ErrUnavailable, d.where, err)
	}
	exp, at, err := s3compat.Expiry(now, want, c.CanExpire, c.Expires)
	return exp, at, c, err
}

// fastSign signs r with the fast path; false means the SDK must.
func (d *Driver) fastSign(c aws.Credentials, r *s3compat.SignRequest) (string, bool) {
	if d.fast == nil {
		return "", false
	}
	return d.fast.Presign(s3compat.Credentials{AccessKey: c.AccessKeyID, SecretKey: c.SecretAccessKey, SessionToken: c.SessionToken}, r)
}

// PresignPut signs a PUT of exactly c.Size bytes of c.ContentType.
func (d *Driver) PresignPut(ctx context.Context, key string, c drivers.Constraints) (drivers.Grant, error) {
	if err := s3compat.CheckPut(c); err != nil {
		return drivers.Grant{}, err
	}
	now := d.now()
	exp, at, creds, err := d.expiry(ctx, now, c.Expires)
	if err != nil {
		return drivers.Grant{}, err
	}
	enf := s3compat.PutEnforced(c)
	if c.Size == 0 {
		// SigV4 in this SDK signs Content-Length only when it is
		// positive: an empty upload's length is checked on completion.
		enf.Size = drivers.AfterUpload
	}
	// The fast path signs what the SDK signs, with one exception: the
	// SDK drops Content-Type from an empty upload's signature, the fast
	// path keeps it, as the grant's "content_type: signature" promises.
	var hs [8]s3compat.Header
	if u, ok := d.fastSign(creds, &s3compat.SignRequest{
		Method:  http.MethodPut,
		Key:     key,
		Query:   []s3compat.Param{{Name: "x-id", Value: "PutObject"}},
		Headers: s3compat.PutSignedHeaders(hs[:0], c, c.Size > 0),
		Expires: exp,
		Time:    now,
	}); ok {
		return drivers.Grant{Method: http.MethodPut, URL: u, Headers: s3compat.PutHeaders(c), ExpiresAt: at, Enforced: enf}, nil
	}
	in := &s3.PutObjectInput{
		Bucket:        &d.set.Bucket,
		Key:           &key,
		ContentLength: aws.Int64(c.Size),
		Metadata:      c.Metadata,
	}
	if c.ContentType != "" {
		in.ContentType = aws.String(c.ContentType)
	}
	if c.NoOverwrite {
		in.IfNoneMatch = aws.String("*")
	}
	if c.ChecksumSHA256 != "" {
		in.ChecksumSHA256 = aws.String(c.ChecksumSHA256)
	}
	req, err := d.presign.PresignPutObject(ctx, in, s3.WithPresignExpires(exp), d.signAt(now))
	if err != nil {
		return drivers.Grant{}, fmt.Errorf("presign put %q on %s: %w", key, d.where, err)
	}
	return drivers.Grant{
		Method:    http.MethodPut,
		URL:       req.URL,
		Headers:   s3compat.PutHeaders(c),
		ExpiresAt: at,
		Enforced:  enf,
	}, nil
}

// PresignPost signs a browser form upload with a POST policy.
func (d *Driver) PresignPost(ctx context.Context, key string, c drivers.Constraints) (drivers.Grant, error) {
	if c.MaxSize <= 0 {
		return drivers.Grant{}, fmt.Errorf("%w: a POST policy needs a positive max size", drivers.ErrInvalid)
	}
	exp, at, _, err := d.expiry(ctx, d.now(), c.Expires)
	if err != nil {
		return drivers.Grant{}, err
	}
	fields, conds := s3compat.PostFields(key, c)
	req, err := d.presign.PresignPostObject(ctx, &s3.PutObjectInput{Bucket: &d.set.Bucket, Key: &key},
		func(o *s3.PresignPostOptions) {
			o.Expires = exp
			o.Conditions = conds
		})
	if err != nil {
		return drivers.Grant{}, fmt.Errorf("presign post %q on %s: %w", key, d.where, err)
	}
	for k, v := range req.Values {
		fields[k] = v
	}
	return drivers.Grant{
		Method:    http.MethodPost,
		URL:       req.URL,
		Headers:   map[string]string{},
		Fields:    fields,
		ExpiresAt: at,
		Enforced:  s3compat.PostEnforced(c),
	}, nil
}

// PresignGet signs a download, offering o.Filename to browsers.
func (d *Driver) PresignGet(ctx context.Context, key string, o drivers.GetOptions) (drivers.Grant, error) {
	now := d.now()
	exp, at, creds, err := d.expiry(ctx, now, o.Expires)
	if err != nil {
		return drivers.Grant{}, err
	}
	cd := s3compat.ContentDisposition(o.Filename)
	q := []s3compat.Param{{Name: "x-id", Value: "GetObject"}}
	if cd != "" {
		q = append(q, s3compat.Param{Name: "response-content-disposition", Value: cd})
	}
	if u, ok := d.fastSign(creds, &s3compat.SignRequest{Method: http.MethodGet, Key: key, Query: q, Expires: exp, Time: now}); ok {
		return drivers.Grant{Method: http.MethodGet, URL: u, Headers: map[string]string{}, ExpiresAt: at}, nil
	}
	in := &s3.GetObjectInput{Bucket: &d.set.Bucket, Key: &key}
	if cd != "" {
		in.ResponseContentDisposition = aws.String(cd)
	}
	req, err := d.presign.PresignGetObject(ctx, in, s3.WithPresignExpires(exp), d.signAt(now))
	if err != nil {
		return drivers.Grant{}, fmt.Errorf("presign get %q on %s: %w", key, d.where, err)
	}
	return drivers.Grant{Method: http.MethodGet, URL: req.URL, Headers: map[string]string{}, ExpiresAt: at}, nil
}

// Stat reads an object's size, type, ETag, metadata and checksum. The
// fast HEAD answers when it can; the SDK answers the rest.
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
		d.log.DebugContext(ctx, "s3: stat by the SDK", "bucket", d.set.Bucket, "reason", fb.Reason)
	}
	return d.sdkStat(ctx, key)
}

// fastStat is Stat through the fast HEAD alone; a *s3compat.Fallback
// error means the SDK must answer.
func (d *Driver) fastStat(ctx context.Context, key string) (drivers.ObjectInfo, error) {
	if d.stat == nil || d.creds == nil {
		return drivers.ObjectInfo{}, &s3compat.Fallback{Reason: "no fast path for this endpoint"}
	}
	c, err := d.creds.Retrieve(ctx)
	if err != nil {
		// The SDK reports the credential failure in its own words.
		return drivers.ObjectInfo{}, &s3compat.Fallback{Reason: "no credentials"}
	}
	return d.stat.Stat(ctx, s3compat.Credentials{AccessKey: c.AccessKeyID, SecretKey: c.SecretAccessKey, SessionToken: c.SessionToken}, key, d.now())
}

// sdkStat is Stat through the SDK, with its retries.
func (d *Driver) sdkStat(ctx context.Context, key string) (drivers.ObjectInfo, error) {
	out, err := d.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket:       &d.set.Bucket,
		Key:          &key,
		ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		return drivers.ObjectInfo{}, d.mapErr("stat", key, err)
	}
	info := drivers.ObjectInfo{
		Key:            key,
		Size:           aws.ToInt64(out.ContentLength),
		ContentType:    aws.ToString(out.ContentType),
		ETag:           s3compat.TrimETag(aws.ToString(out.ETag)),
		Metadata:       make(map[string]string, len(out.Metadata)),
		ModTime:        aws.ToTime(out.LastModified),
		ChecksumSHA256: s3compat.WholeChecksum(aws.ToString(out.ChecksumSHA256)),
	}
	for k, v := range out.Metadata {
		info.Metadata[s3compat.MetaKey(k)] = v
	}
	return info, nil
}

// ReadRange reads up to n bytes at off; past the end it returns nothing.
func (d *Driver) ReadRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if off < 0 || n <= 0 {
		return nil, fmt.Errorf("%w: range %d+%d", drivers.ErrInvalid, off, n)
	}
	out, err := d.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: &d.set.Bucket,
		Key:    &key,
		Range:  aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1)),
	})
	if err != nil {
		if storeErr(err).Code == "InvalidRange" {
			return []byte{}, nil // empty object, or off past its end
		}
		return nil, d.mapErr("read", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, n))
	if err != nil {
		return nil, d.mapErr("read", key, err)
	}
	return b, nil
}

// Delete removes key; a missing key is not an error.
func (d *Driver) Delete(ctx context.Context, key string) error {
	_, err := d.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &d.set.Bucket, Key: &key})
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
	_, err := d.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &d.set.Bucket})
	if err != nil {
		err = d.mapErr("ping", "", err)
		if errors.Is(err, drivers.ErrNotFound) {
			return fmt.Errorf("%w: %s: the bucket does not exist", drivers.ErrUnavailable, d.where)
		}
		return err
	}
	return nil
}

// List lists objects under prefix.
func (d *Driver) List(ctx context.Context, prefix string) ([]drivers.ObjectInfo, error) {
	var out []drivers.ObjectInfo
	p := s3.NewListObjectsV2Paginator(d.client, &s3.ListObjectsV2Input{Bucket: &d.set.Bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, d.mapErr("list", prefix, err)
		}
		for _, o := range page.Contents {
			out = append(out, drivers.ObjectInfo{
				Key:     aws.ToString(o.Key),
				Size:    aws.ToInt64(o.Size),
				ETag:    s3compat.TrimETag(aws.ToString(o.ETag)),
				ModTime: aws.ToTime(o.LastModified),
			})
		}
	}
	return out, nil
}

// Close drops the fast Stat's idle connections; the SDK's HTTP client
// is shared.
func (d *Driver) Close() error {
	d.stat.CloseIdleConnections()
	return nil
}

// CreateMultipart starts an upload whose object gets c's type and metadata.
func (d *Driver) CreateMultipart(ctx context.Context, key string, c drivers.Constraints) (string, error) {
	in := &s3.CreateMultipartUploadInput{Bucket: &d.set.Bucket, Key: &key, Metadata: c.Metadata}
	if c.ContentType != "" {
		in.ContentType = aws.String(c.ContentType)
	}
	out, err := d.client.CreateMultipartUpload(ctx, in)
	if err != nil {
		return "", d.mapErr("create multipart", key, err)
	}
	return aws.ToString(out.UploadId), nil
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
	exp, at, creds, err := d.expiry(ctx, now, expires)
	if err != nil {
		return drivers.Grant{}, err
	}
	in := &s3.UploadPartInput{
		Bucket:     &d.set.Bucket,
		Key:        &key,
		UploadId:   &uploadID,
		PartNumber: aws.Int32(int32(part)),
	}
	enf := drivers.Enforced{Size: drivers.AfterUpload, ContentType: drivers.NotEnforced, Checksum: drivers.NotEnforced, NoOverwrite: drivers.NotEnforced}
	if size > 0 {
		in.ContentLength = aws.Int64(size)
		enf.Size = drivers.BySignature
	}
	var hs []s3compat.Header
	if size > 0 {
		hs = []s3compat.Header{{Name: "content-length", Value: strconv.FormatInt(size, 10)}}
	}
	if u, ok := d.fastSign(creds, &s3compat.SignRequest{
		Method:  http.MethodPut,
		Key:     key,
		Query:   []s3compat.Param{{Name: "partNumber", Value: strconv.Itoa(part)}, {Name: "uploadId", Value: uploadID}, {Name: "x-id", Value: "UploadPart"}},
		Headers: hs,
		Expires: exp,
		Time:    now,
	}); ok {
		return drivers.Grant{Method: http.MethodPut, URL: u, Headers: map[string]string{}, ExpiresAt: at, Enforced: enf}, nil
	}
	req, err := d.presign.PresignUploadPart(ctx, in, s3.WithPresignExpires(exp), d.signAt(now))
	if err != nil {
		return drivers.Grant{}, fmt.Errorf("presign part %d of %q on %s: %w", part, key, d.where, err)
	}
	return drivers.Grant{Method: http.MethodPut, URL: req.URL, Headers: map[string]string{}, ExpiresAt: at, Enforced: enf}, nil
}

// ListParts lists the parts the store holds, by number.
func (d *Driver) ListParts(ctx context.Context, key, uploadID string) ([]drivers.Part, error) {
	var parts []drivers.Part
	p := s3.NewListPartsPaginator(d.client, &s3.ListPartsInput{Bucket: &d.set.Bucket, Key: &key, UploadId: &uploadID})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, d.mapErr("list parts", key, err)
		}
		for _, pt := range page.Parts {
			parts = append(parts, drivers.Part{
				Number: int(aws.ToInt32(pt.PartNumber)),
				ETag:   s3compat.TrimETag(aws.ToString(pt.ETag)),
				Size:   aws.ToInt64(pt.Size),
			})
		}
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
	done := make([]types.CompletedPart, len(sorted))
	for i, p := range sorted {
		done[i] = types.CompletedPart{PartNumber: aws.Int32(int32(p.Number)), ETag: aws.String(s3compat.QuoteETag(p.ETag))}
	}
	_, err := d.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          &d.set.Bucket,
		Key:             &key,
		UploadId:        &uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
	})
	if err != nil {
		return drivers.ObjectInfo{}, d.mapErr("complete multipart", key, err)
	}
	return d.Stat(ctx, key)
}

// AbortMultipart drops an upload and its parts.
func (d *Driver) AbortMultipart(ctx context.Context, key, uploadID string) error {
	_, err := d.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &d.set.Bucket, Key: &key, UploadId: &uploadID})
	if err != nil {
		return d.mapErr("abort multipart", key, err)
	}
	return nil
}

// signAt makes the SDK sign at now, the instant the grant's expiry was
// computed from, so ExpiresAt and the URL agree to the second.
func (d *Driver) signAt(now time.Time) func(*s3.PresignOptions) {
	return func(o *s3.PresignOptions) {
		o.Presigner = atTime{o.Presigner, now}
	}
}

// atTime is the SDK's presigner with the signing time fixed.
type atTime struct {
	s3.HTTPPresignerV4
	t time.Time
}

func (a atTime) PresignHTTP(ctx context.Context, c aws.Credentials, r *http.Request, payloadHash, service, region string, _ time.Time, optFns ...func(*v4.SignerOptions)) (string, http.Header, error) {
	return a.HTTPPresignerV4.PresignHTTP(ctx, c, r, payloadHash, service, region, a.t, optFns...)
}

func (d *Driver) mapErr(op, key string, err error) error {
	return s3compat.MapError(d.where, op, key, storeErr(err), err)
}

// storeErr reads the S3 error code and HTTP status out of an SDK error.
func storeErr(err error) s3compat.StoreError {
	var se s3compat.StoreError
	var api smithy.APIError
	if errors.As(err, &api) {
		se.Code = api.ErrorCode()
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		se.Status = re.HTTPStatusCode()
	}
	return se
}
