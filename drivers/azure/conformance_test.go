package azure

import (
	"testing"

	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/drivers/drivertest"
)

// TestConformance runs the shared suite against Azurite, which checks SAS
// signatures, expiry and permissions as Azure does.
func TestConformance(t *testing.T) {
	drivertest.Run(t, drivertest.Harness{
		Open: func(t *testing.T) drivers.Driver {
			d, _ := startAzure(t)
			return d
		},
	})
}
