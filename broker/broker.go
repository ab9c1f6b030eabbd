package broker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-contrib/cors"
	"github.com/gin-gonic/gin"

	"github.com/upbroker/upbroker/auth"
	"github.com/upbroker/upbroker/broker/openapi"
	"github.com/upbroker/upbroker/broker/policy"
	"github.com/upbroker/upbroker/broker/ticket"
	"github.com/upbroker/upbroker/broker/web"
	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/events"
	"github.com/upbroker/upbroker/ratelimit"
)

// Limits and defaults of the HTTP layer.
const (
	// MaxJSONBody caps every request body the broker reads itself.
	MaxJSONBody = 64 << 10
	// DefaultCompleteGrace is server.complete_grace when unset.
	DefaultCompleteGrace = time.Hour
	readyTimeout         = 3 * time.Second
	// maxPartsPerRequest bounds one GET .../parts answer.
	maxPartsPerRequest = 100
	// downloadExpires is how long a signed download URL lives.
	downloadExpires = 5 * time.Minute
)

// Broker serves the API. It keeps no state between requests except what
// New precomputes, so any number of replicas can serve the same clients.
type Broker struct {
	o         Options
	log       *slog.Logger
	now       func() time.Time
	tickets   *ticket.Codec
	profiles  map[string]*policy.Profile
	backends  map[string]drivers.Driver
	names     []string // backend names, sorted
	def       string
	grace     time.Duration
	publicURL string
	auth      auth.Authenticator
	limiter   ratelimit.Limiter
	events    events.Sink
	metrics   Metrics
	draining  atomic.Bool
	handler   http.Handler
}

// New checks the options, compiles every profile and builds the routes.
func New(o Options) (*Broker, error) {
	if o.Config == nil {
		return nil, errors.New("broker: Options.Config is required")
	}
	cfg := o.Config
	b := &Broker{
		o: o, log: o.Logger, now: o.Now, backends: o.Backends, auth: o.Auth, limiter: o.Limiter,
		events: o.Events, metrics: o.Metrics, profiles: map[string]*policy.Profile{},
		def: cfg.DefaultProfile, grace: cfg.Server.CompleteGrace,
		publicURL: strings.TrimRight(cfg.Server.PublicURL, "/"),
	}
	if b.log == nil {
		b.log = slog.Default()
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.auth == nil {
		b.auth = auth.None{}
	}
	if b.limiter == nil {
		b.limiter = ratelimit.Unlimited{}
	}
	if b.events == nil {
		b.events = events.Discard{}
	}
	if b.metrics == nil {
		b.metrics = noMetrics{}
	}
	if b.grace <= 0 {
		b.grace = DefaultCompleteGrace
	}
	if b.publicURL != "" {
		if u, err := url.Parse(b.publicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("server.public_url: %q is not an absolute http(s) URL", cfg.Server.PublicURL)
		}
	}
	var err error
	if b.tickets, err = ticket.New(o.TicketKeys); err != nil {
		return nil, fmt.Errorf("secrets.ticket_keys: %w", err)
	}
	if len(o.Backends) == 0 {
		return nil, errors.New("broker: no backends")
	}
	for name := range o.Backends {
		b.names = append(b.names, name)
	}
	sort.Strings(b.names)
	for name, p := range cfg.Profiles {
		cp, err := policy.Compile(name, p)
		if err != nil {
			return nil, err
		}
		if _, ok := o.Backends[p.Backend]; !ok {
			return nil, fmt.Errorf("profiles.%s.backend: backend %q is not open", name, p.Backend)
		}
		if cp.Post && !o.Backends[p.Backend].Capabilities().PostPolicy {
			return nil, fmt.Errorf("profiles.%s.method: backend %q cannot sign POST uploads; use method: put", name, p.Backend)
		}
		b.profiles[name] = cp
	}
	if b.def != "" && b.profiles[b.def] == nil {
		return nil, fmt.Errorf("default_profile: no profile named %q", b.def)
	}
	h, err := b.routes()
	if err != nil {
		return nil, err
	}
	b.handler = h
	return b, nil
}

// Handler is the whole HTTP API.
func (b *Broker) Handler() http.Handler { return b.handler }

// Drain makes /readyz answer 503 at once, so a load balancer stops sending
// traffic while in-flight requests finish (used on SIGTERM).
func (b *Broker) Drain() { b.draining.Store(true) }

// Close releases the backends and the limiter.
func (b *Broker) Close() error {
	var errs []error
	for _, name := range b.names {
		if err := b.backends[name].Close(); err != nil {
			errs = append(errs, fmt.Errorf("close backend %s: %w", name, err))
		}
	}
	if err := b.limiter.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close rate limiter: %w", err))
	}
	return errors.Join(errs...)
}

func (b *Broker) routes() (http.Handler, error) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	if err := r.SetTrustedProxies(b.o.Config.Server.TrustedProxies); err != nil {
		return nil, fmt.Errorf("server.trusted_proxies: %w", err)
	}
	r.Use(b.requestID, b.accessLog, gin.CustomRecovery(b.recovered))
	if c, ok, err := b.corsConfig(); err != nil {
		return nil, err
	} else if ok {
		r.Use(cors.New(c))
	}
	r.NoRoute(func(c *gin.Context) { abort(c, errNotFound("no such route")) })
	r.NoMethod(func(c *gin.Context) {
		abort(c, &apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "method not allowed on this route"})
	})

	// Drivers that serve their own signed URLs read large bodies and do
	// their own size checks, so they sit outside the JSON body cap.
	for _, name := range b.names {
		if hs, ok := b.backends[name].(drivers.HTTPServer); ok {
			prefix := "/v1/blob/" + name
			h := gin.WrapH(http.StripPrefix(prefix, hs.Handler()))
			r.Any(prefix+"/*path", h)
		}
	}

	if err := b.mountCompanion(r); err != nil {
		return nil, err
	}

	capped := r.Group("/", bodyCap)
	capped.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	capped.GET("/readyz", b.readyz)
	if b.o.Metrics != nil {
		capped.GET("/metrics", gin.WrapH(b.o.Metrics.Handler()))
	}
	capped.GET("/openapi.json", gin.WrapH(openapi.Handler()))
	capped.GET("/v1/client.js", asset("upbroker.js", "text/javascript; charset=utf-8"))
	capped.GET("/v1/client.d.ts", asset("upbroker.d.ts", "text/javascript; charset=utf-8"))
	if b.o.Config.Server.DemoPage {
		capped.GET("/", asset("index.html", "text/html; charset=utf-8"))
		capped.GET("/demo/*file", demoAsset)
	}

	api := capped.Group("/v1", b.authenticate)
	api.POST("/uploads", b.createUpload)
	api.GET("/uploads/:id/parts", b.parts)
	api.POST("/uploads/:id/complete", b.complete)
	api.DELETE("/uploads/:id", b.abortUpload)
	// Downloads authenticate inside: public_read objects need no credential.
	capped.GET("/v1/downloads/*key", b.download)
	return r, nil
}

func (b *Broker) corsConfig() (cors.Config, bool, error) {
	cc := b.o.Config.Server.CORS
	if len(cc.AllowedOrigins) == 0 {
		return cors.Config{}, false, nil
	}
	c := cors.Config{
		AllowMethods:     []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions},
		AllowHeaders:     []string{"Authorization", "X-API-Key", "Content-Type", "X-Request-ID", "If-None-Match", "Range"},
		ExposeHeaders:    []string{"X-Request-ID", "Retry-After", "ETag", "Location"},
		AllowCredentials: cc.AllowCredentials,
		MaxAge:           cc.MaxAge,
	}
	for _, o := range cc.AllowedOrigins {
		if o == "*" {
			if cc.AllowCredentials {
				return c, false, errors.New("server.cors: allowed_origins \"*\" cannot be combined with allow_credentials")
			}
			c.AllowAllOrigins = true
		}
	}
	// The file driver's signed PUTs carry per-upload metadata headers whose
	// names vary; "*" admits them (browsers honour it without credentials,
	// and never let it cover Authorization, which is listed by name).
	if !cc.AllowCredentials {
		c.AllowHeaders = append(c.AllowHeaders, "*")
	} else {
		c.AllowHeaders = append(c.AllowHeaders, "X-Upbroker-Meta-Upbrokerprincipal", "X-Upbroker-Meta-Upbrokerprofile")
	}
	if !c.AllowAllOrigins {
		c.AllowOrigins = cc.AllowedOrigins
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 10 * time.Minute
	}
	if err := c.Validate(); err != nil {
		return c, false, fmt.Errorf("server.cors: %w", err)
	}
	return c, true, nil
}

func asset(name, ctype string) gin.HandlerFunc {
	return func(c *gin.Context) {
		data, err := fs.ReadFile(web.Assets, name)
		if err != nil {
			abort(c, errNotFound("no such file"))
			return
		}
		c.Header("Cache-Control", "no-cache")
		c.Data(http.StatusOK, ctype, data)
	}
}

func demoAsset(c *gin.Context) {
	name := strings.TrimPrefix(c.Param("file"), "/")
	if !fs.ValidPath(name) || name == "." {
		abort(c, errNotFound("no such file"))
		return
	}
	c.FileFromFS(name, http.FS(web.Assets))
}

// readyz pings every backend at once, so one slow store does not hide the
// others, and names the ones that failed.
func (b *Broker) readyz(c *gin.Context) {
	if b.draining.Load() {
		abort(c, &apiError{Status: http.StatusServiceUnavailable, Code: "backend_unavailable", Message: "draining: shutting down"})
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), readyTimeout)
	defer cancel()
	errs := make([]error, len(b.names))
	done := make(chan int, len(b.names))
	for i, name := range b.names {
		go func() {
			start := time.Now()
			errs[i] = b.backends[name].Ping(ctx)
			b.metrics.BackendCall(name, "ping", time.Since(start), errs[i])
			done <- i
		}()
	}
	for range b.names {
		<-done
	}
	var failed []string
	for i, err := range errs {
		if err != nil {
			failed = append(failed, b.names[i])
			b.log.WarnContext(ctx, "backend not ready", "backend", b.names[i], "err", err)
		}
	}
	if len(failed) > 0 {
		abort(c, &apiError{Status: http.StatusServiceUnavailable, Code: "backend_unavailable",
			Message: "backend not ready: " + strings.Join(failed, ", ")})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready", "backends": b.names})
}
