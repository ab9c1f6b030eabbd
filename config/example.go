package config

import _ "embed"

// Example is a commented config that loads as it is: the file driver under
// ./data, auth mode none on loopback, one images profile. `upbroker config
// example` prints it.
//
//go:embed example.yaml
var Example []byte
