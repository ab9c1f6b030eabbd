// Package events carries what happened to an upload from the broker to
// whoever listens (webhooks, logs), tusd-style: the handler publishes, and
// never waits for the listeners.
package events

import "time"

// Type names an event.
type Type string

// The events the broker publishes.
const (
	Completed Type = "upload.completed"
	Rejected  Type = "upload.rejected"
	Aborted   Type = "upload.aborted"
)

// Event is one upload's change of state.
type Event struct {
	ID          string            `json:"id"`
	Type        Type              `json:"type"`
	Time        time.Time         `json:"time"`
	Key         string            `json:"key"`
	Backend     string            `json:"backend"`
	Profile     string            `json:"profile"`
	Principal   string            `json:"principal"`
	Size        int64             `json:"size"`
	ContentType string            `json:"content_type"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	// Reason says why an upload was rejected: size, type, sniff, checksum
	// or missing.
	Reason string `json:"reason,omitempty"`
}

// Sink receives events. Publish must not block the caller.
type Sink interface {
	Publish(Event)
}

// Discard drops every event.
type Discard struct{}

// Publish implements Sink.
func (Discard) Publish(Event) {}
