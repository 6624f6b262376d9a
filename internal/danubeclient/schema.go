package danubeclient

import (
	"context"
	"errors"
	"fmt"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/schemapb"
)

// SchemaRef names a schema-registry subject for a producer.
type SchemaRef struct {
	Subject    string
	Version    uint32 // pinned version; 0 means latest unless MinVersion is set
	MinVersion uint32
}

func (s *SchemaRef) validate() error {
	if s.Subject == "" {
		return errors.New("schema reference: the subject is empty: name a registered schema subject")
	}
	if s.Version != 0 && s.MinVersion != 0 {
		return fmt.Errorf("schema reference %q: set either Version (%d) or MinVersion (%d), not both",
			s.Subject, s.Version, s.MinVersion)
	}
	return nil
}

func (s *SchemaRef) proto() *danubepb.SchemaReference {
	ref := &danubepb.SchemaReference{Subject: s.Subject}
	switch {
	case s.Version != 0:
		ref.VersionRef = &danubepb.SchemaReference_PinnedVersion{PinnedVersion: s.Version}
	case s.MinVersion != 0:
		ref.VersionRef = &danubepb.SchemaReference_MinVersion{MinVersion: s.MinVersion}
	default:
		ref.VersionRef = &danubepb.SchemaReference_UseLatest{UseLatest: true}
	}
	return ref
}

// resolvedSchema is what every message of a producer is stamped with.
type resolvedSchema struct {
	id      uint64
	version uint32
}

// resolveSchema finds the schema id and version a reference stands for, on
// the service URL: the registry is not topic-routed (every broker of a
// cluster reads it from the metadata store), so there is no owner to follow.
func (c *Client) resolveSchema(ctx context.Context, ref *SchemaRef) (*resolvedSchema, error) {
	what := fmt.Sprintf("resolve schema subject %q", ref.Subject)
	reg := schemapb.NewSchemaRegistryClient(c.service.cc)
	var latest *schemapb.GetSchemaResponse
	err := retry(ctx, c.retry, func(ctx context.Context) error {
		cctx, cancel := c.callCtx(ctx)
		defer cancel()
		var err error
		latest, err = reg.GetLatestSchema(cctx, &schemapb.GetLatestSchemaRequest{Subject: ref.Subject})
		return err
	})
	if err != nil {
		return nil, c.service.decorate(classify(what, err))
	}
	switch {
	case ref.MinVersion != 0 && latest.GetVersion() < ref.MinVersion:
		return nil, fmt.Errorf("%s: the latest version is %d, below the required minimum %d: register a newer schema",
			what, latest.GetVersion(), ref.MinVersion)
	case ref.Version == 0 || ref.Version == latest.GetVersion():
		return &resolvedSchema{id: latest.GetSchemaId(), version: latest.GetVersion()}, nil
	case ref.Version > latest.GetVersion():
		return nil, fmt.Errorf("%s: version %d does not exist (latest is %d)", what, ref.Version, latest.GetVersion())
	}
	var pinned *schemapb.GetSchemaResponse
	err = retry(ctx, c.retry, func(ctx context.Context) error {
		cctx, cancel := c.callCtx(ctx)
		defer cancel()
		v := ref.Version
		var err error
		pinned, err = reg.GetSchema(cctx, &schemapb.GetSchemaRequest{SchemaId: latest.GetSchemaId(), Version: &v})
		return err
	})
	if err != nil {
		return nil, c.service.decorate(classify(fmt.Sprintf("%s version %d", what, ref.Version), err))
	}
	return &resolvedSchema{id: pinned.GetSchemaId(), version: pinned.GetVersion()}, nil
}
