// Package all registers every driver that ships with upbroker. Import it
// for its side effects; a new backend adds one line here.
package all

import (
	_ "github.com/upbroker/upbroker/drivers/azure" // azure
	_ "github.com/upbroker/upbroker/drivers/file"  // file
	_ "github.com/upbroker/upbroker/drivers/gcs"   // gcs
	_ "github.com/upbroker/upbroker/drivers/minio" // minio
	_ "github.com/upbroker/upbroker/drivers/s3"    // s3
)
