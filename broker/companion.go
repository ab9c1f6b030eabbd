package broker

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/upbroker/upbroker/compat/companion"
)

type clientIPKey struct{}

// mountCompanion serves Uppy Companion's S3 signing routes under
// compat.companion.path, when enabled. They sit behind the same request
// id, access log and CORS middleware as the v1 API, and the same body cap.
func (b *Broker) mountCompanion(r *gin.Engine) error {
	cc := b.o.Config.Compat.Companion
	if !cc.Enabled {
		return nil
	}
	p, ok := b.o.Config.Profiles[cc.Profile]
	if !ok {
		return fmt.Errorf("compat.companion.profile: no profile named %q", cc.Profile)
	}
	settings := b.o.Config.Backends[p.Backend].Settings
	bucket := settings["bucket"]
	if bucket == "" {
		bucket = settings["container"]
	}
	h, err := companion.New(companion.Options{
		Config: cc, ProfileName: cc.Profile, Profile: p,
		Backend: p.Backend, Driver: b.backends[p.Backend], Bucket: bucket,
		Auth: b.auth, Limiter: b.limiter, OnStoreError: b.o.Config.RateLimit.OnStoreError,
		OnRateLimited: b.metrics.RateLimited,
		// The v1 API's counters and event sink: a Companion upload is
		// counted and published as one through /v1/uploads is.
		Metrics: b.metrics, Events: b.events,
		// gin knows which proxies to believe; hand its answer through.
		ClientIP: func(r *http.Request) string {
			ip, _ := r.Context().Value(clientIPKey{}).(string)
			return ip
		},
		Logger: b.log.With("component", "companion"), Now: b.now,
	})
	if err != nil {
		return fmt.Errorf("compat.companion: %w", err)
	}
	h = http.StripPrefix(cc.Path, h)
	r.Any(cc.Path+"/*path", companionBodyCap, func(c *gin.Context) {
		ctx := context.WithValue(c.Request.Context(), clientIPKey{}, c.ClientIP())
		h.ServeHTTP(c.Writer, c.Request.WithContext(ctx))
	})
	return nil
}

// companionBodyCap is bodyCap in Companion's error shape, {"error": "..."}:
// Uppy 5.x shows a 4xx's "message" to the user, and a v1-shaped error on
// these routes would be a second dialect for one client.
func companionBodyCap(c *gin.Context) {
	if c.Request.ContentLength > MaxJSONBody {
		msg := "the body is larger than " + strconv.Itoa(MaxJSONBody) + " bytes"
		c.Header("Cache-Control", "no-store")
		c.Header("X-Content-Type-Options", "nosniff")
		c.AbortWithStatusJSON(http.StatusRequestEntityTooLarge, gin.H{"error": msg, "message": msg})
		return
	}
	if c.Request.Body != nil && c.Request.Body != http.NoBody {
		// The handler reports a streamed body that runs over the cap
		// itself, in its own shape.
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, MaxJSONBody)
	}
	c.Next()
}
