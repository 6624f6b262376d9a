package danube

import (
	"context"

	"github.com/conduitio/conduit-commons/lang"
	"github.com/conduitio/conduit-commons/opencdc"
	sdk "github.com/conduitio/conduit-connector-sdk"

	"github.com/conduitio-labs/conduit-connector-danube/config"
)

// Source reads Danube topics through a durable subscription and emits each
// message as an OpenCDC record.
type Source struct {
	sdk.UnimplementedSource

	config config.SourceConfig
}

// NewSource returns the source wrapped in the SDK's default middleware. Schema
// extraction is off by default: message payloads are raw bytes.
func NewSource() sdk.Source {
	return sdk.SourceWithMiddleware(&Source{config: config.SourceConfig{
		DefaultSourceMiddleware: sdk.DefaultSourceMiddleware{
			SourceWithSchemaExtraction: sdk.SourceWithSchemaExtraction{
				PayloadEnabled: lang.Ptr(false),
				KeyEnabled:     lang.Ptr(false),
			},
		},
	}})
}

// Config returns the source's parameters for the SDK to fill in.
func (s *Source) Config() sdk.SourceConfig {
	return &s.config
}

// Open subscribes to the configured topics and resumes after pos.
func (s *Source) Open(context.Context, opencdc.Position) error {
	return sdk.ErrUnimplemented
}

// Teardown releases the connection; it works without Open.
func (s *Source) Teardown(context.Context) error {
	return nil
}
