package broker

import (
	"errors"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/upbroker/upbroker/auth"
	"github.com/upbroker/upbroker/broker/policy"
	"github.com/upbroker/upbroker/drivers"
)

type downloadResponse struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// download signs a GET for an object's owner, or for anyone when the
// object's profile is public_read. Ownership comes from the object's own
// reserved metadata, so no state is needed.
func (b *Broker) download(c *gin.Context) {
	key := strings.TrimPrefix(c.Param("key"), "/")
	if err := policy.CheckKey(key); err != nil {
		abort(c, badRequest("key", "not a valid object key"))
		return
	}
	p, authErr := b.auth.Authenticate(c.Request)
	if authErr != nil && errors.Is(authErr, auth.ErrUnavailable) {
		abort(c, authError(authErr))
		return
	}
	if authErr == nil {
		SetPrincipal(c, p)
	}
	// Without a credential, a missing object and a private one answer the
	// same 401, so strangers learn nothing about which keys exist.
	unauth := func() {
		c.Header("WWW-Authenticate", `Bearer realm="upbroker"`)
		abort(c, authError(authErr))
	}
	candidates := b.names
	if name := c.Query("backend"); name != "" {
		if _, ok := b.backends[name]; !ok {
			abort(c, errNotFound("no such object"))
			return
		}
		candidates = []string{name}
	}
	ctx := c.Request.Context()
	var (
		info    drivers.ObjectInfo
		backend string
	)
	for _, name := range candidates {
		drv := b.backends[name]
		err := b.call(name, "stat", func() (err error) { info, err = drv.Stat(ctx, key); return })
		if errors.Is(err, drivers.ErrNotFound) {
			continue
		}
		if err != nil {
			abort(c, storeError(name, "stat", err, errNotFound("no such object")))
			return
		}
		// Only objects the broker granted under a profile of this backend
		// count; anything else in the bucket is not ours to hand out.
		if prof := b.profiles[info.Metadata[MetaProfile]]; prof != nil && prof.Backend == name {
			backend = name
			break
		}
	}
	if backend == "" {
		if authErr != nil {
			unauth()
			return
		}
		abort(c, errNotFound("no such object"))
		return
	}
	prof := b.profiles[info.Metadata[MetaProfile]]
	if !prof.PublicRead {
		if authErr != nil {
			unauth()
			return
		}
		if info.Metadata[MetaPrincipal] != policy.PrincipalTag(p.ID) {
			abort(c, errForbidden("this object belongs to another principal"))
			return
		}
	}
	start := time.Now()
	g, err := b.backends[backend].PresignGet(ctx, key, drivers.GetOptions{Expires: downloadExpires, Filename: path.Base(key)})
	b.metrics.Presign(backend, "get", time.Since(start))
	if err != nil {
		abort(c, storeError(backend, "presign get", err, errNotFound("no such object")))
		return
	}
	exp := g.ExpiresAt
	if exp.IsZero() {
		exp = b.now().Add(downloadExpires)
	}
	c.Header("Cache-Control", "private, no-store")
	if strings.Contains(c.GetHeader("Accept"), "application/json") {
		c.JSON(http.StatusOK, downloadResponse{URL: g.URL, ExpiresAt: exp.UTC().Truncate(time.Second)})
		return
	}
	c.Redirect(http.StatusTemporaryRedirect, g.URL)
}
