package testenv

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"
)

// The development account every Azurite accepts. Microsoft publishes this
// key; it is not a secret and works nowhere but an emulator.
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Azurite is an Azurite blob service started for one test, in memory.
// Unlike fake-gcs-server it checks shared-key and SAS signatures.
type Azurite struct {
	// ServiceURL is http://127.0.0.1:<port>/devstoreaccount1.
	ServiceURL string
	Account    string
	Key        string
	Proc       *Proc
}

// StartAzurite starts azurite-blob from .cache/npm/azurite, or marks the
// test Unavailable when it (or node) is not installed.
func StartAzurite(t testing.TB) *Azurite {
	t.Helper()
	bin := CachePath("npm", "azurite", "node_modules", ".bin", "azurite-blob")
	if _, err := os.Stat(bin); err != nil {
		if p, lerr := exec.LookPath("azurite-blob"); lerr == nil {
			bin = p
		} else {
			Unavailable(t, "azurite-blob not installed: %v", err)
			return nil
		}
	}
	if _, err := exec.LookPath("node"); err != nil {
		Unavailable(t, "node (needed by Azurite) not found: %v", err)
		return nil
	}
	port := FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p := Start(t, "azurite-blob", nil, bin,
		"--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port),
		// In memory, Azurite writes nothing to disk (it refuses
		// --location in this mode).
		"--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck", "--silent")
	p.WaitTCP(t, addr, 60*time.Second)
	return &Azurite{
		ServiceURL: "http://" + addr + "/" + AzuriteAccount,
		Account:    AzuriteAccount,
		Key:        AzuriteKey,
		Proc:       p,
	}
}

// Client is a shared-key client for the emulator's account.
func (a *Azurite) Client(t testing.TB) *azblob.Client {
	t.Helper()
	cred, err := azblob.NewSharedKeyCredential(a.Account, a.Key)
	if err != nil {
		t.Fatalf("azurite credential: %v", err)
	}
	c, err := azblob.NewClientWithSharedKeyCredential(a.ServiceURL+"/", cred, nil)
	if err != nil {
		t.Fatalf("azurite client: %v", err)
	}
	return c
}

// CreateContainer creates a container (an existing one is fine).
func (a *Azurite) CreateContainer(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := a.Client(t).CreateContainer(ctx, name, nil)
	var re *azcore.ResponseError
	if err != nil && !(errors.As(err, &re) && bloberror.HasCode(err, bloberror.ContainerAlreadyExists)) {
		t.Fatalf("create container %s: %v", name, err)
	}
}

// ConnectionString is the emulator's connection string, for configs that
// use connection_string instead of account_name/account_key.
func (a *Azurite) ConnectionString() string {
	return "DefaultEndpointsProtocol=http;AccountName=" + a.Account + ";AccountKey=" + a.Key +
		";BlobEndpoint=" + a.ServiceURL + ";"
}

// AzureCORSAllowedHeaders are the request headers an azure driver's grant
// makes a browser send; the same list goes into a real account's CORS rule.
const AzureCORSAllowedHeaders = "content-type,x-ms-blob-type,x-ms-blob-content-type,x-ms-meta-*,x-ms-version,x-ms-date"

// AllowCORS sets the account's Blob CORS rule so that browsers on origins
// may upload with a grant and download. Azurite, like Azure, answers a
// preflight only when a rule matches.
func (a *Azurite) AllowCORS(t testing.TB, origins ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	str := func(s string) *string { return &s }
	age := int32(3600)
	_, err := a.Client(t).ServiceClient().SetProperties(ctx, &service.SetPropertiesOptions{
		CORS: []*service.CORSRule{{
			AllowedOrigins:  str(strings.Join(origins, ",")),
			AllowedMethods:  str("GET,HEAD,PUT,OPTIONS"),
			AllowedHeaders:  str(AzureCORSAllowedHeaders),
			ExposedHeaders:  str("etag,content-length,content-type,x-ms-request-id"),
			MaxAgeInSeconds: &age,
		}},
	})
	if err != nil {
		t.Fatalf("azurite CORS rule: %v", err)
	}
}
