package file

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/gcerrors"

	"github.com/upbroker/upbroker/drivers"
)

func init() {
	drivers.Register(drivers.Spec{
		Name:     "file",
		Keys:     []string{"path"},
		Required: []string{"path"},
		Open:     open,
	})
}

// Driver is an open file backend.
type Driver struct {
	dir    string
	bucket *blob.Bucket
	sign   *signer
	locks  keyLocks
	log    *slog.Logger
}

var (
	_ drivers.Driver        = (*Driver)(nil)
	_ drivers.PostPresigner = (*Driver)(nil)
	_ drivers.Lister        = (*Driver)(nil)
	_ drivers.HTTPServer    = (*Driver)(nil)
)

func open(_ context.Context, s drivers.Settings, env drivers.Env) (drivers.Driver, error) {
	return Open(s["path"], env)
}

// Open opens the folder dir as a backend, creating it when missing. Signed
// URLs are built on env.BaseURL + "/v1/blob/" + env.Backend and signed with
// env.SigningKey.
func Open(dir string, env drivers.Env) (*Driver, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: path: required", drivers.ErrConfig)
	}
	if len(env.SigningKey) < 16 {
		return nil, fmt.Errorf("%w: file driver needs a signing key of at least 16 bytes", drivers.ErrConfig)
	}
	if env.Backend == "" || checkKey(env.Backend) != nil || strings.Contains(env.Backend, "/") {
		return nil, fmt.Errorf("%w: backend name %q cannot be a URL path segment", drivers.ErrConfig, env.Backend)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: path: %w", drivers.ErrConfig, err)
	}
	b, err := fileblob.OpenBucket(abs, &fileblob.Options{
		CreateDir:   true,
		DirFileMode: 0o750,
		// Temp files next to the object: the rename into place then never
		// crosses file systems (./data and /tmp often differ in containers).
		NoTempDir: true,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: path: %w", drivers.ErrConfig, err)
	}
	sg, err := newSigner(strings.TrimSuffix(env.BaseURL, "/")+"/v1/blob/"+env.Backend, env.SigningKey)
	if err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("%w: %w", drivers.ErrConfig, err)
	}
	log := env.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Driver{dir: abs, bucket: b, sign: sg, log: log.With("backend", env.Backend, "driver", "file")}, nil
}

// Capabilities: the broker's own handler checks everything before it keeps
// a byte, so every constraint is enforced "by signature".
func (d *Driver) Capabilities() drivers.Capabilities {
	all := drivers.Enforced{Size: drivers.BySignature, ContentType: drivers.BySignature,
		Checksum: drivers.BySignature, NoOverwrite: drivers.BySignature}
	return drivers.Capabilities{Put: all, Post: all, PostPolicy: true}
}

func (d *Driver) grant(ctx context.Context, t ticket, ttl time.Duration) (drivers.Grant, error) {
	if err := checkKey(t.Key); err != nil {
		return drivers.Grant{}, err
	}
	if ttl <= 0 {
		return drivers.Grant{}, fmt.Errorf("%w: expiry must be positive", drivers.ErrInvalid)
	}
	u, exp := d.sign.signURL(t, ttl)
	return drivers.Grant{Method: t.Method, URL: u, ExpiresAt: exp, Enforced: d.Capabilities().Put}, nil
}

func checkConstraints(c drivers.Constraints) error {
	if c.ContentType == "" {
		return fmt.Errorf("%w: content type is required", drivers.ErrInvalid)
	}
	for k := range c.Metadata {
		if k == "" || strings.Trim(k, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return fmt.Errorf("%w: metadata key %q is not [a-z0-9-]", drivers.ErrInvalid, k)
		}
	}
	return nil
}

// PresignPut signs a PUT of exactly c.Size bytes. The client must send the
// returned headers: Content-Type and the signed metadata.
func (d *Driver) PresignPut(ctx context.Context, key string, c drivers.Constraints) (drivers.Grant, error) {
	if err := checkConstraints(c); err != nil {
		return drivers.Grant{}, err
	}
	if c.Size < 0 {
		return drivers.Grant{}, fmt.Errorf("%w: size must not be negative", drivers.ErrInvalid)
	}
	g, err := d.grant(ctx, ticket{Key: key, Method: "PUT", ContentType: c.ContentType, Size: c.Size, Max: -1,
		SHA256: c.ChecksumSHA256, NoClobber: c.NoOverwrite, Meta: c.Metadata}, c.Expires)
	if err != nil {
		return g, err
	}
	g.Headers = make(map[string]string, 1+len(c.Metadata))
	g.Headers["Content-Type"] = c.ContentType
	for k, v := range c.Metadata {
		g.Headers[metaHeader(k)] = v
	}
	return g, nil
}

// PresignPost signs a browser form upload of at most c.MaxSize bytes. The
// signed parameters travel as form fields; the file must be the last part.
func (d *Driver) PresignPost(ctx context.Context, key string, c drivers.Constraints) (drivers.Grant, error) {
	if err := checkConstraints(c); err != nil {
		return drivers.Grant{}, err
	}
	if c.MaxSize <= 0 {
		return drivers.Grant{}, fmt.Errorf("%w: max size must be positive", drivers.ErrInvalid)
	}
	t := ticket{Key: key, Method: "POST", ContentType: c.ContentType, Size: -1, Max: c.MaxSize,
		SHA256: c.ChecksumSHA256, NoClobber: c.NoOverwrite, Meta: c.Metadata}
	if err := checkKey(key); err != nil {
		return drivers.Grant{}, err
	}
	if c.Expires <= 0 {
		return drivers.Grant{}, fmt.Errorf("%w: expiry must be positive", drivers.ErrInvalid)
	}
	q, exp, err := d.sign.sign(ctx, t, c.Expires)
	if err != nil {
		return drivers.Grant{}, err
	}
	fields := make(map[string]string, len(q)+1+len(c.Metadata))
	for k, v := range q {
		fields[k] = v[0]
	}
	fields["Content-Type"] = c.ContentType
	for k, v := range c.Metadata {
		fields[metaHeader(k)] = v
	}
	return drivers.Grant{Method: "POST", URL: d.sign.prefix + "/" + key, Fields: fields, ExpiresAt: exp,
		Enforced: d.Capabilities().Post}, nil
}

// defaultGetExpiry applies when GetOptions.Expires is zero.
const defaultGetExpiry = 5 * time.Minute

// PresignGet signs a download; the handler serves it with Range support.
func (d *Driver) PresignGet(ctx context.Context, key string, o drivers.GetOptions) (drivers.Grant, error) {
	if o.Expires == 0 {
		o.Expires = defaultGetExpiry
	}
	return d.grant(ctx, ticket{Key: key, Method: "GET", Size: -1, Max: -1, Filename: o.Filename}, o.Expires)
}

func metaHeader(name string) string {
	// The broker's two reserved names are in every grant: constants spare
	// two allocations per grant.
	switch name {
	case "upbrokerprincipal":
		return MetaHeaderPrefix + "Upbrokerprincipal"
	case "upbrokerprofile":
		return MetaHeaderPrefix + "Upbrokerprofile"
	}
	if c := name[0]; 'a' <= c && c <= 'z' {
		var b strings.Builder
		b.Grow(len(MetaHeaderPrefix) + len(name))
		b.WriteString(MetaHeaderPrefix)
		b.WriteByte(c - 'a' + 'A')
		b.WriteString(name[1:])
		return b.String()
	}
	return MetaHeaderPrefix + strings.ToUpper(name[:1]) + name[1:]
}

// mapErr turns fileblob's errors into the drivers' errors.
func mapErr(op, key string, err error) error {
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		return fmt.Errorf("file: %s %q: %w", op, key, drivers.ErrNotFound)
	case gcerrors.FailedPrecondition:
		return fmt.Errorf("file: %s %q: %w", op, key, drivers.ErrExists)
	case gcerrors.Canceled, gcerrors.DeadlineExceeded:
		return fmt.Errorf("file: %s %q: %w", op, key, err)
	}
	return fmt.Errorf("file: %s %q: %w: %w", op, key, drivers.ErrUnavailable, err)
}

// Stat describes key.
func (d *Driver) Stat(ctx context.Context, key string) (drivers.ObjectInfo, error) {
	if err := checkKey(key); err != nil {
		return drivers.ObjectInfo{}, err
	}
	a, err := d.bucket.Attributes(ctx, key)
	if err != nil {
		return drivers.ObjectInfo{}, mapErr("stat", key, err)
	}
	return objectInfo(key, a), nil
}

func objectInfo(key string, a *blob.Attributes) drivers.ObjectInfo {
	info := drivers.ObjectInfo{Key: key, Size: a.Size, ContentType: a.ContentType, ModTime: a.ModTime,
		ETag: etag(a.MD5, a.ETag)}
	if len(a.Metadata) > 0 {
		info.Metadata = maps.Clone(a.Metadata)
		info.ChecksumSHA256 = info.Metadata[checksumMetaKey]
		delete(info.Metadata, checksumMetaKey)
	}
	return info
}

// etag is the hex MD5 that fileblob computes anyway (like S3's ETag of a
// single PUT), or fileblob's own time-size tag when no MD5 was stored.
func etag(md5 []byte, fallback string) string {
	if len(md5) > 0 {
		return hex.EncodeToString(md5)
	}
	return strings.Trim(fallback, `"`)
}

// ReadRange reads up to n bytes at off.
func (d *Driver) ReadRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if off < 0 || n < 0 {
		return nil, fmt.Errorf("%w: negative offset or length", drivers.ErrInvalid)
	}
	r, err := d.bucket.NewRangeReader(ctx, key, off, n, nil)
	if err != nil {
		return nil, mapErr("read", key, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, mapErr("read", key, err)
	}
	return b, nil
}

// Delete removes key; a missing key is not an error.
func (d *Driver) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := d.bucket.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return mapErr("delete", key, err)
	}
	return nil
}

// List lists the objects under prefix, leaving out uploads in progress.
func (d *Driver) List(ctx context.Context, prefix string) ([]drivers.ObjectInfo, error) {
	var out []drivers.ObjectInfo
	it := d.bucket.List(&blob.ListOptions{Prefix: prefix})
	for {
		o, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, mapErr("list", prefix, err)
		}
		if o.IsDir || tempName(o.Key) {
			continue
		}
		out = append(out, drivers.ObjectInfo{Key: o.Key, Size: o.Size, ModTime: o.ModTime, ETag: etag(o.MD5, "")})
	}
}

// Ping checks that the folder exists and that a file can be created in it.
func (d *Driver) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	st, err := os.Stat(d.dir)
	if err != nil {
		return fmt.Errorf("file: %w: %w", drivers.ErrUnavailable, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("file: %w: %s is not a folder", drivers.ErrUnavailable, d.dir)
	}
	f, err := os.CreateTemp(d.dir, ".upbroker-ping-*")
	if err != nil {
		return fmt.Errorf("file: %w: folder is not writable: %w", drivers.ErrUnavailable, err)
	}
	name := f.Name()
	_ = f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("file: %w: %w", drivers.ErrUnavailable, err)
	}
	return nil
}

// Close releases the bucket.
func (d *Driver) Close() error { return d.bucket.Close() }
