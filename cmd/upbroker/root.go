package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
	"github.com/upbroker/upbroker/drivers"
	_ "github.com/upbroker/upbroker/drivers/all" // register every driver
)

// globals are the root's persistent flags.
type globals struct {
	logFormat string
	logLevel  string
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "upbroker",
		Short: "Grant short-lived signed upload URLs to object stores",
		Long: `upbroker is an upload broker. Callers ask it for permission to upload a file;
it checks who they are and what they send, and answers with a short-lived
signed URL that points straight at the object store (S3, MinIO, Google Cloud
Storage, Azure Blob, or a local folder). After the upload it verifies the
object's size and type.

Start with an example config:

  upbroker config example > upbroker.yaml
  upbroker config check upbroker.yaml
  upbroker serve --config upbroker.yaml`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := g.logger(io.Discard); err != nil {
				return err
			}
			return nil
		},
	}
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "json", "log format: json (one object per line, for collectors) or text (key=value, for people)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "least severe level logged: debug, info, warn or error")
	root.AddCommand(newServeCmd(g), newConfigCmd(), newVersionCmd(), newAPIKeyCmd())
	return root
}

// logger builds the process logger on w (stderr in practice: stdout is for
// command output such as config check).
func (g *globals) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil || !oneOf(strings.ToLower(g.logLevel), "debug", "info", "warn", "error") {
		return nil, fmt.Errorf("--log-level: %q is not one of debug, info, warn, error", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch g.logFormat {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is neither json nor text", g.logFormat)
}

// isSecret tells config redaction which backend settings to hide. An
// unknown driver's settings are all hidden: nothing says they are safe.
func isSecret(driver, key string) bool {
	s, ok := drivers.Lookup(driver)
	return !ok || s.IsSecret(key)
}

func oneOf(s string, options ...string) bool {
	for _, o := range options {
		if s == o {
			return true
		}
	}
	return false
}
