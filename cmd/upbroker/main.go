// Command upbroker is the upload broker: it grants short-lived signed
// upload URLs to authenticated callers and checks what they uploaded.
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// exitError carries an exit code through cobra, whose commands return only
// errors. Its message has already been printed when msg is empty.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(os.Stderr, "upbroker:", ee.msg)
		}
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "upbroker:", err)
	return 1
}
