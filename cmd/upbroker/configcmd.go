package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/upbroker/upbroker/config"
	"github.com/upbroker/upbroker/internal/app"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check a config file, or print an example one",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Validate a config file and print it resolved, with secrets redacted",
		Long: `check loads FILE exactly as serve would: ${VAR} expanded, UPBROKER_<PATH>
environment overrides and defaults applied. If it is valid, the resolved
config is printed as YAML on stdout, with every secret (ticket keys, JWT
secret, webhook secrets, Redis password, secret backend settings) replaced
by <redacted>, and the exit code is 0. If not, every error is listed on
stderr, one per line with its key path, and the exit code is 1.

No connection is made: a valid config may still fail to reach its stores.`,
		Example: `  upbroker config check upbroker.yaml
  UPBROKER_SERVER_ADDR=0.0.0.0:8080 upbroker config check upbroker.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(args[0], app.LoadOptions())
			if err != nil {
				var es config.Errors
				if errors.As(err, &es) {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d error(s):\n", args[0], len(es))
					for _, e := range es {
						fmt.Fprintln(cmd.ErrOrStderr(), "  "+e.Error())
					}
					return &exitError{code: 1}
				}
				return err
			}
			out, err := cfg.Redacted(isSecret)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}, &cobra.Command{
		Use:   "example",
		Short: "Print a commented example config",
		Long: `example prints a config that works as it is (the file driver under ./data,
auth mode none on 127.0.0.1:8080, one "images" profile), with every other
setting shown in comments.`,
		Example: `  upbroker config example > upbroker.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(config.Example)
			return err
		},
	})
	return cmd
}
