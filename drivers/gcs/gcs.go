// Package gcs is the Google Cloud Storage driver, built on
// gocloud.dev/blob/gcsblob. Uploads are V4 signed URLs whose signature
// pins the content type, the exact size (x-goog-content-length-range), the
// no-overwrite precondition (x-goog-if-generation-match: 0) and the
// metadata, so GCS itself refuses anything else.
//
// Signing needs a service-account key (credentials_file) or, with
// access_id alone, the IAM Credentials API's signBlob (workload identity);
// the serving identity then needs roles/iam.serviceAccountTokenCreator on
// that service account.
package gcs

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	credentials "cloud.google.com/go/iam/credentials/apiv1"
	"cloud.google.com/go/iam/credentials/apiv1/credentialspb"
	"cloud.google.com/go/storage"
	"gocloud.dev/blob"
	"gocloud.dev/blob/gcsblob"
	"google.golang.org/api/option"

	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/drivers/gocloudblob"
)

// Name is the driver's name in the config.
const Name = "gcs"

// MaxSinglePut is GCS's object size limit; one PUT can carry all of it.
const MaxSinglePut int64 = 5 << 40

// maxExpiry is the longest a V4 signature may live.
const maxExpiry = 7 * 24 * time.Hour

func init() {
	drivers.Register(drivers.Spec{
		Name:     Name,
		Keys:     []string{"bucket", "credentials_file", "access_id", "endpoint"},
		Required: []string{"bucket"},
		Open: func(ctx context.Context, s drivers.Settings, env drivers.Env) (drivers.Driver, error) {
			return Open(ctx, s, env)
		},
	})
}

// Driver is one GCS bucket. The embedded store serves Stat, ReadRange,
// Delete, List and Ping; Close is the driver's own, for its clients.
type Driver struct {
	gocloudblob.Store
	bucket   string
	accessID string
	// hostname and insecure point signed URLs at an emulator; empty for
	// storage.googleapis.com.
	hostname string
	insecure bool
	closers  []func() error
}

var (
	_ drivers.Driver = (*Driver)(nil)
	_ drivers.Lister = (*Driver)(nil)
)

// serviceAccount is the part of a service-account JSON key we read.
type serviceAccount struct {
	Type        string `json:"type"`
	ClientEmail string `json:"client_email"`
	PrivateKey  string `json:"private_key"`
}

// Open connects a bucket. It checks that URLs can be signed, but does not
// contact GCS (readiness is Ping's job), except that access_id signing
// builds an IAM Credentials client from the default credentials.
func Open(ctx context.Context, s drivers.Settings, env drivers.Env) (*Driver, error) {
	log := env.Logger
	if log == nil {
		log = slog.Default()
	}
	bucket := s["bucket"]
	if bucket == "" {
		return nil, fmt.Errorf("%w: bucket: required by driver %q", drivers.ErrConfig, Name)
	}
	d := &Driver{bucket: bucket}

	endpoint := s["endpoint"]
	if endpoint == "" {
		if h := os.Getenv("STORAGE_EMULATOR_HOST"); h != "" {
			endpoint = h
		}
	}
	var emu *url.URL
	if endpoint != "" {
		// STORAGE_EMULATOR_HOST is conventionally host:port with no scheme,
		// and the Google libraries then speak plain http to it.
		if !strings.Contains(endpoint, "://") {
			endpoint = "http://" + endpoint
		}
		u, err := url.Parse(endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("%w: endpoint: want http(s)://host[:port], got %q", drivers.ErrConfig, s["endpoint"])
		}
		emu = u
		d.hostname = u.Host
		d.insecure = u.Scheme == "http"
	}

	opts := &gcsblob.Options{}
	var clientOpts []option.ClientOption
	credFile := s["credentials_file"]
	accessID := s["access_id"]
	switch {
	case credFile != "":
		raw, err := os.ReadFile(credFile)
		if err != nil {
			return nil, fmt.Errorf("%w: credentials_file: %w", drivers.ErrConfig, err)
		}
		var sa serviceAccount
		if err := json.Unmarshal(raw, &sa); err != nil {
			return nil, fmt.Errorf("%w: credentials_file: not a JSON key file: %w", drivers.ErrConfig, err)
		}
		if sa.PrivateKey == "" || sa.ClientEmail == "" {
			return nil, fmt.Errorf("%w: credentials_file: %s has no client_email/private_key, so it cannot sign URLs; "+
				"use a service-account key file, or set access_id instead to sign through the IAM Credentials API",
				drivers.ErrConfig, credFile)
		}
		key, err := parseRSAKey([]byte(sa.PrivateKey))
		if err != nil {
			return nil, fmt.Errorf("%w: credentials_file: private_key: %w", drivers.ErrConfig, err)
		}
		if accessID != "" && accessID != sa.ClientEmail {
			return nil, fmt.Errorf("%w: access_id: %q differs from the client_email of credentials_file; leave access_id empty or make them agree",
				drivers.ErrConfig, accessID)
		}
		opts.GoogleAccessID = sa.ClientEmail
		opts.SignBytes = keySigner(key)
		if emu == nil {
			clientOpts = append(clientOpts, option.WithAuthCredentialsJSON(option.ServiceAccount, raw))
		}
	case accessID != "":
		if emu != nil {
			return nil, fmt.Errorf("%w: access_id: IAM signing cannot be used with an emulator endpoint; set credentials_file", drivers.ErrConfig)
		}
		iamc, err := credentials.NewIamCredentialsRESTClient(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: access_id: cannot create an IAM Credentials client from the default credentials: %w", drivers.ErrConfig, err)
		}
		d.closers = append(d.closers, iamc.Close)
		opts.GoogleAccessID = accessID
		opts.MakeSignBytes = iamSigner(iamc, accessID)
	case emu != nil:
		// The emulator checks no signatures, so a throwaway key lets the
		// dev setup run with no Google credentials at all.
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("gcs: emulator signing key: %w", err)
		}
		opts.GoogleAccessID = "upbroker-emulator@localhost"
		opts.SignBytes = keySigner(key)
		log.Warn("gcs: no credentials_file or access_id; signing with a throwaway key, which only an emulator accepts",
			"backend", env.Backend, "endpoint", emu.Host)
	default:
		return nil, fmt.Errorf("%w: cannot sign URLs for bucket %q: set credentials_file (a service-account JSON key) "+
			"or access_id (a service-account email to sign as through the IAM Credentials API, "+
			"which needs roles/iam.serviceAccountTokenCreator)", drivers.ErrConfig, bucket)
	}
	d.accessID = opts.GoogleAccessID

	if emu != nil {
		clientOpts = append(clientOpts,
			option.WithoutAuthentication(),
			option.WithEndpoint(strings.TrimRight(emu.String(), "/")+"/storage/v1/"),
			// Reads go through the JSON API so that every request on the
			// XML object paths is a signed-URL request, which keeps the
			// test proxy that checks signatures in front of it honest.
			storage.WithJSONReads())
	}
	client, err := storage.NewClient(ctx, clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("%w: gcs client: %w", drivers.ErrConfig, err)
	}
	// A broker answers people who wait: a few quick retries, then 503,
	// rather than the library's retrying until the caller's deadline.
	client.SetRetry(storage.WithMaxAttempts(3))
	opts.Client = client
	d.closers = append(d.closers, client.Close)
	b, err := gcsblob.OpenBucket(ctx, nil, bucket, opts)
	if err != nil {
		_ = d.Close()
		return nil, fmt.Errorf("%w: gcs bucket %q: %w", drivers.ErrConfig, bucket, err)
	}
	d.Store = gocloudblob.Store{Bucket: b, Name: bucket}
	return d, nil
}

// iamSigner signs through the IAM Credentials API, so no key ever leaves
// Google: the identity the broker runs as needs
// roles/iam.serviceAccountTokenCreator on accessID.
func iamSigner(c *credentials.IamCredentialsClient, accessID string) func(context.Context) gcsblob.SignBytesFunc {
	return func(ctx context.Context) gcsblob.SignBytesFunc {
		return func(p []byte) ([]byte, error) {
			resp, err := c.SignBlob(ctx, &credentialspb.SignBlobRequest{
				Name:    "projects/-/serviceAccounts/" + accessID,
				Payload: p,
			})
			if err != nil {
				return nil, fmt.Errorf("%w: IAM signBlob as %s: %w", drivers.ErrUnavailable, accessID, err)
			}
			return resp.GetSignedBlob(), nil
		}
	}
}

// Capabilities: everything but the checksum is in the signature. GCS
// verifies only MD5 and CRC32C, never SHA-256, so the broker checks that.
func (d *Driver) Capabilities() drivers.Capabilities {
	return drivers.Capabilities{
		Put: drivers.Enforced{
			Size:        drivers.BySignature,
			ContentType: drivers.BySignature,
			Checksum:    drivers.AfterUpload,
			NoOverwrite: drivers.BySignature,
		},
		MaxSinglePut: MaxSinglePut,
	}
}

// PresignPut signs a V4 PUT. The size range is the exact size, not 0..max:
// the broker granted exactly c.Size bytes, and a range of one value makes
// GCS refuse a short body as well as a long one.
func (d *Driver) PresignPut(ctx context.Context, key string, c drivers.Constraints) (drivers.Grant, error) {
	if c.Size < 0 || c.Size > MaxSinglePut {
		return drivers.Grant{}, fmt.Errorf("%w: size %d outside 0..%d", drivers.ErrInvalid, c.Size, MaxSinglePut)
	}
	headers := map[string]string{
		"x-goog-content-length-range": fmt.Sprintf("%d,%d", c.Size, c.Size),
	}
	if c.ContentType != "" {
		headers["Content-Type"] = c.ContentType
	}
	enforced := d.Capabilities().Put
	if c.NoOverwrite {
		headers["x-goog-if-generation-match"] = "0"
	} else {
		enforced.NoOverwrite = drivers.NotEnforced
	}
	for k, v := range c.Metadata {
		headers["x-goog-meta-"+strings.ToLower(k)] = v
	}
	var ext []string
	for k, v := range headers {
		if k == "Content-Type" {
			continue // signed through ContentType
		}
		ext = append(ext, k+":"+v)
	}
	sort.Strings(ext)
	u, exp, err := d.sign(ctx, key, http.MethodPut, c.ContentType, c.ContentType == "", ext, nil, c.Expires)
	if err != nil {
		return drivers.Grant{}, err
	}
	return drivers.Grant{Method: http.MethodPut, URL: u, Headers: headers, ExpiresAt: exp, Enforced: enforced}, nil
}

// PresignGet signs a V4 GET; a filename becomes response-content-disposition,
// which is part of the signature.
func (d *Driver) PresignGet(ctx context.Context, key string, o drivers.GetOptions) (drivers.Grant, error) {
	var q url.Values
	if o.Filename != "" {
		q = url.Values{"response-content-disposition": {drivers.ContentDisposition(o.Filename)}}
	}
	u, exp, err := d.sign(ctx, key, http.MethodGet, "", false, nil, q, o.Expires)
	if err != nil {
		return drivers.Grant{}, err
	}
	return drivers.Grant{Method: http.MethodGet, URL: u, Headers: map[string]string{}, ExpiresAt: exp}, nil
}

func (d *Driver) sign(ctx context.Context, key, method, contentType string, absentType bool, headers []string, query url.Values, expires time.Duration) (string, time.Time, error) {
	if expires <= 0 {
		return "", time.Time{}, fmt.Errorf("%w: expiry must be positive", drivers.ErrInvalid)
	}
	if expires > maxExpiry {
		expires = maxExpiry
	}
	u, err := d.Bucket.SignedURL(ctx, key, &blob.SignedURLOptions{
		Method:                   method,
		Expiry:                   expires,
		ContentType:              contentType,
		EnforceAbsentContentType: absentType,
		BeforeSign: func(as func(any) bool) error {
			var so *storage.SignedURLOptions
			if !as(&so) {
				return errors.New("gcs: BeforeSign: not a storage.SignedURLOptions")
			}
			// gcsblob signs V2 by default; V2 cannot carry extension
			// headers in the URL's own terms and is on its way out.
			so.Scheme = storage.SigningSchemeV4
			so.Headers = headers
			so.QueryParameters = query
			if d.hostname != "" {
				so.Hostname = d.hostname
				so.Insecure = d.insecure
			}
			return nil
		},
	})
	if err != nil {
		return "", time.Time{}, gocloudblob.MapError(ctx, "sign", d.bucket, key, err)
	}
	exp, err := expiryOf(u)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("gcs: signed URL: %w", err)
	}
	return u, exp, nil
}

// expiryOf reads the real expiry back from the URL: X-Goog-Date plus
// X-Goog-Expires, which the library rounds down to whole seconds.
func expiryOf(raw string) (time.Time, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return time.Time{}, err
	}
	q := u.Query()
	t, err := time.Parse("20060102T150405Z", q.Get("X-Goog-Date"))
	if err != nil {
		return time.Time{}, fmt.Errorf("X-Goog-Date: %w", err)
	}
	secs, err := strconv.Atoi(q.Get("X-Goog-Expires"))
	if err != nil {
		return time.Time{}, fmt.Errorf("X-Goog-Expires: %w", err)
	}
	return t.Add(time.Duration(secs) * time.Second), nil
}

// Close releases the clients.
func (d *Driver) Close() error {
	var errs []error
	if d.Bucket != nil {
		// The bucket does not own a client passed in Options.Client.
		errs = append(errs, d.Store.Close())
	}
	for _, c := range d.closers {
		errs = append(errs, c())
	}
	d.closers = nil
	return errors.Join(errs...)
}

func parseRSAKey(p []byte) (*rsa.PrivateKey, error) {
	blk, _ := pem.Decode(p)
	if blk == nil {
		return nil, errors.New("not PEM")
	}
	if k, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, errors.New("not an RSA key")
		}
		return rk, nil
	}
	k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
	if err != nil {
		return nil, errors.New("neither PKCS#8 nor PKCS#1 RSA")
	}
	return k, nil
}

// keySigner signs with a key parsed once at Open; handing the library the
// PEM instead would parse it again for every URL.
func keySigner(k *rsa.PrivateKey) func([]byte) ([]byte, error) {
	return func(p []byte) ([]byte, error) {
		sum := sha256.Sum256(p)
		return rsa.SignPKCS1v15(nil, k, crypto.SHA256, sum[:])
	}
}
