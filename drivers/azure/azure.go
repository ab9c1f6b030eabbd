// Package azure is the Azure Blob Storage driver, built on
// gocloud.dev/blob/azureblob for reads and deletes and on the azblob sas
// package for signing. Uploads get a create-only service SAS (permission
// c, no w), so an existing blob can never be replaced through a grant. A
// SAS cannot limit size or content type, so the broker checks both, and
// the checksum, after the upload.
package azure

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"gocloud.dev/blob/azureblob"

	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/drivers/gocloudblob"
)

// Name is the driver's name in the config.
const Name = "azure"

// MaxSinglePut is the largest block blob one Put Blob may carry (service
// versions from 2019-12-12 on).
const MaxSinglePut int64 = 5000 << 20

// ClockSkew is how far in the past a SAS starts, so a store whose clock is
// behind ours still accepts it at once.
const ClockSkew = 5 * time.Minute

// maxExpiry bounds grants; a service SAS signed with the account key has no
// limit of its own, so this is the broker's choice: a week, like GCS.
const maxExpiry = 7 * 24 * time.Hour

func init() {
	drivers.Register(drivers.Spec{
		Name:     Name,
		Keys:     []string{"container", "account_name", "account_key", "connection_string", "endpoint"},
		Required: []string{"container"},
		Secret:   []string{"account_key", "connection_string"},
		Open: func(ctx context.Context, s drivers.Settings, env drivers.Env) (drivers.Driver, error) {
			return Open(ctx, s, env)
		},
	})
}

// Driver is one Azure Blob container. The embedded store serves Stat,
// ReadRange, Delete, List, Ping and Close.
type Driver struct {
	gocloudblob.Store
	cred      *azblob.SharedKeyCredential
	container string
	// containerURL is the service URL plus the container, no trailing slash.
	containerURL string
	protocol     sas.Protocol
	log          *slog.Logger
	// now is the signing clock; tests move it to make expired SAS.
	now func() time.Time
}

var (
	_ drivers.Driver = (*Driver)(nil)
	_ drivers.Lister = (*Driver)(nil)
)

// containerName follows Azure's rules: 3-63 of lower-case letters, digits
// and single hyphens, starting and ending with a letter or digit.
var containerName = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

// Open connects a container with shared-key auth, which a SAS needs. It
// makes no network call.
func Open(ctx context.Context, s drivers.Settings, env drivers.Env) (*Driver, error) {
	log := env.Logger
	if log == nil {
		log = slog.Default()
	}
	cont := s["container"]
	if len(cont) < 3 || len(cont) > 63 || !containerName.MatchString(cont) {
		return nil, fmt.Errorf("%w: container: %q is not a valid container name (3-63 lower-case letters, digits, hyphens)", drivers.ErrConfig, cont)
	}
	account, key, serviceURL := s["account_name"], s["account_key"], ""
	if cs := s["connection_string"]; cs != "" {
		if account != "" || key != "" {
			return nil, fmt.Errorf("%w: connection_string: set either connection_string or account_name/account_key, not both", drivers.ErrConfig)
		}
		var err error
		account, key, serviceURL, err = parseConnectionString(cs)
		if err != nil {
			return nil, fmt.Errorf("%w: connection_string: %w", drivers.ErrConfig, err)
		}
	}
	switch {
	case account == "" && key == "":
		return nil, fmt.Errorf("%w: account_name: set account_name and account_key, or connection_string; a SAS needs the shared key", drivers.ErrConfig)
	case account == "":
		return nil, fmt.Errorf("%w: account_name: required with account_key", drivers.ErrConfig)
	case key == "":
		return nil, fmt.Errorf("%w: account_key: required with account_name (a SAS is signed with it)", drivers.ErrConfig)
	}
	if ep := s["endpoint"]; ep != "" {
		serviceURL = ep
	}
	if serviceURL == "" {
		serviceURL = "https://" + account + ".blob.core.windows.net"
	}
	su, err := url.Parse(serviceURL)
	if err != nil || su.Host == "" || (su.Scheme != "http" && su.Scheme != "https") {
		return nil, fmt.Errorf("%w: endpoint: want http(s)://host[:port][/account], got %q", drivers.ErrConfig, serviceURL)
	}
	cred, err := azblob.NewSharedKeyCredential(account, key)
	if err != nil {
		// The SDK's message names the problem (bad base64) without the key.
		return nil, fmt.Errorf("%w: account_key: %w", drivers.ErrConfig, err)
	}
	d := &Driver{
		cred:         cred,
		container:    cont,
		containerURL: strings.TrimRight(su.String(), "/") + "/" + cont,
		protocol:     sas.ProtocolHTTPS,
		log:          log,
		now:          time.Now,
	}
	if su.Scheme == "http" {
		// Only an emulator is served over http; a SAS limited to https
		// would be refused there.
		d.protocol = sas.ProtocolHTTPSandHTTP
	}
	cc, err := container.NewClientWithSharedKeyCredential(d.containerURL, cred, &container.ClientOptions{
		ClientOptions: azcore.ClientOptions{
			// A broker answers people who wait; a few quick retries
			// beat the SDK's default of minutes before reporting 503.
			Retry: policy.RetryOptions{MaxRetries: 2, RetryDelay: 200 * time.Millisecond, MaxRetryDelay: 2 * time.Second},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: azure container client: %w", drivers.ErrConfig, err)
	}
	b, err := azureblob.OpenBucket(ctx, cc, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: azure container %q: %w", drivers.ErrConfig, cont, err)
	}
	d.Store = gocloudblob.Store{Bucket: b, Name: cont}
	return d, nil
}

// parseConnectionString reads the keys a SAS needs from an Azure storage
// connection string. UseDevelopmentStorage=true means Azurite's defaults.
func parseConnectionString(cs string) (account, key, serviceURL string, err error) {
	kv := map[string]string{}
	for _, part := range strings.Split(cs, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return "", "", "", fmt.Errorf("segment without '=' (want Key=Value;...)")
		}
		kv[strings.ToLower(k)] = v
	}
	if strings.EqualFold(kv["usedevelopmentstorage"], "true") {
		return devAccount, devKey, "http://127.0.0.1:10000/" + devAccount, nil
	}
	account, key = kv["accountname"], kv["accountkey"]
	if account == "" || key == "" {
		return "", "", "", fmt.Errorf("needs AccountName and AccountKey (a SAS token connection string cannot sign)")
	}
	serviceURL = kv["blobendpoint"]
	if serviceURL == "" {
		proto := kv["defaultendpointsprotocol"]
		if proto == "" {
			proto = "https"
		}
		suffix := kv["endpointsuffix"]
		if suffix == "" {
			suffix = "core.windows.net"
		}
		serviceURL = proto + "://" + account + ".blob." + suffix
	}
	return account, key, serviceURL, nil
}

// Azurite's published development account (not a secret).
const (
	devAccount = "devstoreaccount1"
	devKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Capabilities: only overwrite is in the signature; Azure stores only
// Content-MD5, never SHA-256, and a SAS cannot bound size or type.
func (d *Driver) Capabilities() drivers.Capabilities {
	return drivers.Capabilities{
		Put: drivers.Enforced{
			Size:        drivers.AfterUpload,
			ContentType: drivers.AfterUpload,
			Checksum:    drivers.AfterUpload,
			NoOverwrite: drivers.BySignature,
		},
		MaxSinglePut: MaxSinglePut,
	}
}

// metadataName is what Azure accepts as a metadata name (a C# identifier,
// which excludes hyphens); checked here so the client gets a clear 400
// instead of the store's.
var metadataName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// PresignPut signs a Put Blob of a block blob with a create-only SAS.
func (d *Driver) PresignPut(ctx context.Context, key string, c drivers.Constraints) (drivers.Grant, error) {
	if c.Size < 0 || c.Size > MaxSinglePut {
		return drivers.Grant{}, fmt.Errorf("%w: size %d outside 0..%d", drivers.ErrInvalid, c.Size, MaxSinglePut)
	}
	headers := map[string]string{"x-ms-blob-type": "BlockBlob"}
	if c.ContentType != "" {
		headers["x-ms-blob-content-type"] = c.ContentType
		// Browsers attach a Content-Type to a Blob body anyway; matching
		// it keeps the two from disagreeing.
		headers["Content-Type"] = c.ContentType
	}
	for k, v := range c.Metadata {
		if !metadataName.MatchString(k) {
			return drivers.Grant{}, fmt.Errorf("%w: metadata key %q: Azure allows only letters, digits and underscores", drivers.ErrInvalid, k)
		}
		headers["x-ms-meta-"+k] = v
	}
	perm := sas.BlobPermissions{Create: true}
	enforced := d.Capabilities().Put
	if !c.NoOverwrite {
		perm.Write = true
		enforced.NoOverwrite = drivers.NotEnforced
	}
	u, exp, err := d.sign(key, perm, "", c.Expires)
	if err != nil {
		return drivers.Grant{}, err
	}
	return drivers.Grant{Method: http.MethodPut, URL: u, Headers: headers, ExpiresAt: exp, Enforced: enforced}, nil
}

// PresignGet signs a read-only SAS; a filename is signed in as rscd, so
// the store answers with that Content-Disposition.
func (d *Driver) PresignGet(ctx context.Context, key string, o drivers.GetOptions) (drivers.Grant, error) {
	var cd string
	if o.Filename != "" {
		cd = drivers.ContentDisposition(o.Filename)
	}
	u, exp, err := d.sign(key, sas.BlobPermissions{Read: true}, cd, o.Expires)
	if err != nil {
		return drivers.Grant{}, err
	}
	return drivers.Grant{Method: http.MethodGet, URL: u, Headers: map[string]string{}, ExpiresAt: exp}, nil
}

func (d *Driver) sign(key string, perm sas.BlobPermissions, disposition string, expires time.Duration) (string, time.Time, error) {
	if expires <= 0 {
		return "", time.Time{}, fmt.Errorf("%w: expiry must be positive", drivers.ErrInvalid)
	}
	if expires > maxExpiry {
		expires = maxExpiry
	}
	if key == "" || strings.HasPrefix(key, "/") {
		return "", time.Time{}, fmt.Errorf("%w: blob name %q", drivers.ErrInvalid, key)
	}
	// SAS times have whole seconds; truncate so ExpiresAt is the real one.
	now := d.now().UTC().Truncate(time.Second)
	exp := now.Add(expires)
	qp, err := sas.BlobSignatureValues{
		Protocol:           d.protocol,
		StartTime:          now.Add(-ClockSkew),
		ExpiryTime:         exp,
		Permissions:        perm.String(),
		ContainerName:      d.container,
		BlobName:           key,
		ContentDisposition: disposition,
	}.SignWithSharedKey(d.cred)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("azure: sign SAS: %w", err)
	}
	return d.blobURL(key) + "?" + qp.Encode(), exp, nil
}

// blobURL escapes each path segment of the key but keeps its slashes,
// which Azure treats as part of the name.
func (d *Driver) blobURL(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return d.containerURL + "/" + strings.Join(segs, "/")
}
