package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/upbroker/upbroker/auth"
	"github.com/upbroker/upbroker/internal/version"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version of this build",
		Example: "  upbroker version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), version.Version)
			return err
		},
	}
}

func newAPIKeyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apikey",
		Short: "Make API keys for auth mode api_key",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "new",
		Short: "Print a fresh random API key and the SHA-256 digest to put in the config",
		Long: `new prints two lines: the key, which you give to the client (it sends it as
"Authorization: Bearer <key>" or "X-API-Key: <key>"), and the hex SHA-256
digest of the key, which goes into the config. The broker stores only the
digest, so the key cannot be read back from the config: keep it now.`,
		Example: `  upbroker apikey new
  # key:    upb_...
  # sha256: 3f1c...
  # then in the config:
  #   auth:
  #     mode: api_key
  #     api_keys:
  #       - {name: web, sha256: 3f1c...}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, digest, err := auth.NewAPIKey()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "key:    %s\nsha256: %s\n", key, digest)
			return err
		},
	})
	return cmd
}
