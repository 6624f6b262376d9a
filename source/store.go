package source

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	sdk "github.com/conduitio/conduit-connector-sdk"

	"github.com/conduitio-labs/conduit-connector-danube/config"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/segment"
)

// openStore opens the broker's durable storage that history is read from
// and probes it, so that a wrong bucket, credential or prefix fails Open
// with the parameter to fix instead of failing the first history read.
func openStore(ctx context.Context, cfg *config.SourceConfig, catalog danubepb.StorageServiceClient, consumers []TopicConsumer) (*segment.BlobStore, error) {
	loc := cfg.SnapshotLocation()
	rootParam := "snapshot.storage.root"
	if cfg.Snapshot.SegmentRoot != "" {
		rootParam = "snapshot.segmentRoot"
	}
	store, err := segment.OpenBlobStore(ctx, loc)
	if err != nil {
		return nil, fmt.Errorf("open the snapshot storage (%q %s, backend %s): %w", rootParam, loc.Root, loc.Backend, err)
	}
	if err := probeStore(ctx, store, loc, rootParam, catalog, consumers); err != nil {
		return nil, errors.Join(err, store.Close())
	}
	return store, nil
}

func probeStore(ctx context.Context, store *segment.BlobStore, loc segment.Location, rootParam string,
	catalog danubepb.StorageServiceClient, consumers []TopicConsumer,
) error {
	found, err := store.Probe(ctx)
	switch {
	case errors.Is(err, segment.ErrNoBucket):
		return fmt.Errorf("%q is %s, but its bucket does not exist%s: set it to the broker's storage.durable.root: %w",
			rootParam, loc.Root, at(loc), err)
	case errors.Is(err, segment.ErrAccessDenied):
		return fmt.Errorf("the %s backend rejected the credentials for %q %s%s: %s: %w",
			loc.Backend, rootParam, loc.Root, at(loc), credentialHint(loc.Backend), err)
	case errors.Is(err, segment.ErrWrongRegion):
		return fmt.Errorf("%q %s is in another region than %q (%q): set the bucket's region: %w",
			rootParam, loc.Root, "snapshot.storage.region", loc.Region, err)
	case err != nil && loc.Endpoint != "":
		return fmt.Errorf("cannot list %q %s at %q %s: check both: %w",
			rootParam, loc.Root, "snapshot.storage.endpoint", loc.Endpoint, err)
	case err != nil:
		return fmt.Errorf("cannot list %q %s: %w", rootParam, loc.Root, err)
	}
	// A segment the broker lists must be under the root; when it is not,
	// the prefix (or the whole root) is not the broker's durable root.
	for _, tc := range consumers {
		for _, p := range tc.Consumer.Partitions() {
			descs, err := segment.ListDescriptors(ctx, catalog, p, 0)
			if err != nil {
				return fmt.Errorf("list the sealed segments of %s: %w", p, err)
			}
			if len(descs) == 0 {
				continue
			}
			ok, err := store.Exists(ctx, p, descs[0].SegmentID)
			if err != nil {
				return fmt.Errorf("%q %s: %w", rootParam, loc.Root, err)
			}
			if !ok {
				return fmt.Errorf("%q %s does not hold %s, a segment of %s the broker lists: "+
					"set it to the broker's storage.durable.root, prefix included", rootParam, loc.Root,
					segment.ObjectPath(p, descs[0].SegmentID), p)
			}
		}
	}
	sdk.Logger(ctx).Info().Str("backend", loc.Backend).Str("root", loc.Root).Str("endpoint", loc.Endpoint).
		Bool("segmentsFound", found).Msg("snapshot storage opened")
	return nil
}

// exportedTo reports whether store holds a segment of a partition: the
// broker exports it there.
func exportedTo(store *segment.BlobStore) func(context.Context, string) (bool, error) {
	return func(ctx context.Context, partition string) (bool, error) {
		ids, err := store.Segments(ctx, partition)
		return len(ids) > 0, err
	}
}

// at names the endpoint in messages, when one is set.
func at(loc segment.Location) string {
	if loc.Endpoint == "" {
		return ""
	}
	u, err := url.Parse(loc.Endpoint)
	if err != nil {
		return ""
	}
	return fmt.Sprintf(" at %q %s", "snapshot.storage.endpoint", u.Redacted())
}

// credentialHint says where each backend's SDK looks for credentials.
func credentialHint(backend string) string {
	switch backend {
	case segment.BackendS3:
		return "provide them as the AWS SDK looks for them (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE " +
			"with the shared credentials file, or an instance or task role) to the process running the connector"
	case segment.BackendGCS:
		return "provide Google application default credentials (GOOGLE_APPLICATION_CREDENTIALS, or the " +
			"metadata server's service account) to the process running the connector"
	case segment.BackendAzblob:
		return "provide AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or AZURE_STORAGE_CONNECTION_STRING, or an " +
			"identity DefaultAzureCredential finds, to the process running the connector"
	}
	return "check the directory's permissions"
}
