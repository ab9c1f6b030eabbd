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
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
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
	creds   aws.CredentialsProvider
	log     *slog.Logger
	now     func() time.Time
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
	client := func(ep string) *s3.Client {
		return s3.NewFromConfig(cfg, func(o *s3.Options) {
			if ep != "" {
				o.BaseEndpoint = aws.String(ep)
			}
			o.UsePathStyle = set.PathStyle
			// The SDK would otherwise add CRC32 trailers and signed
			// checksum-algorithm parameters that a browser cannot satisfy.
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		})
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
	return d
}

// Capabilities of S3 and of stores that implement its signatures.
func (d *Driver) Capabilities() drivers.Capabilities { return s3compat.Capabilities() }

// expiry clamps a grant to the credentials' own life.
func (d *Driver) expiry(ctx context.Context, want time.Duration) (time.Duration, time.Time, error) {
	if d.creds == nil {
		return 0, time.Time{}, fmt.Errorf("%w: %s: no credentials configured", drivers.ErrUnavailable, d.where)
	}
	c, err := d.creds.Retrieve(ctx)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("%w: %s: cannot get credentials: %w", drivers.ErrUnavailable, d.where, err)
	}
	return s3compat.Expiry(d.now(), want, c.CanExpire, c.Expires)
}

// PresignPut signs a PUT of exactly c.Size bytes of c.ContentType.
func (d *Driver) PresignPut(ctx context.Context, key string, c drivers.Constraints) (drivers.Grant, error) {
	if err := s3compat.CheckPut(c); err != nil {
		return drivers.Grant{}, err
	}
	exp, at, err := d.expiry(ctx, c.Expires)
	if err != nil {
		return drivers.Grant{}, err
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
	req, err := d.presign.PresignPutObject(ctx, in, s3.WithPresignExpires(exp))
	if err != nil {
		return drivers.Grant{}, fmt.Errorf("presign put %q on %s: %w", key, d.where, err)
	}
	enf := s3compat.PutEnforced(c)
	if c.Size == 0 {
		// SigV4 in this SDK signs Content-Length only when it is
		// positive: an empty upload's length is checked on completion.
		enf.Size = drivers.AfterUpload
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
	exp, at, err := d.expiry(ctx, c.Expires)
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
	exp, at, err := d.expiry(ctx, o.Expires)
	if err != nil {
		return drivers.Grant{}, err
	}
	in := &s3.GetObjectInput{Bucket: &d.set.Bucket, Key: &key}
	if cd := s3compat.ContentDisposition(o.Filename); cd != "" {
		in.ResponseContentDisposition = aws.String(cd)
	}
	req, err := d.presign.PresignGetObject(ctx, in, s3.WithPresignExpires(exp))
	if err != nil {
		return drivers.Grant{}, fmt.Errorf("presign get %q on %s: %w", key, d.where, err)
	}
	return drivers.Grant{Method: http.MethodGet, URL: req.URL, Headers: map[string]string{}, ExpiresAt: at}, nil
}

// Stat reads an object's size, type, ETag, metadata and checksum.
func (d *Driver) Stat(ctx context.Context, key string) (drivers.ObjectInfo, error) {
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

// Close has nothing to release: the SDK's HTTP client is shared.
func (d *Driver) Close() error { return nil }

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
	exp, at, err := d.expiry(ctx, expires)
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
	req, err := d.presign.PresignUploadPart(ctx, in, s3.WithPresignExpires(exp))
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
