package segment

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	"gocloud.dev/blob/azureblob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/gcsblob"
	"gocloud.dev/blob/s3blob"
	"gocloud.dev/gcp"
	"google.golang.org/api/option"
)

// Backends of the broker's durable storage (its storage.durable.backend;
// fs is a shared_fs root).
const (
	BackendFS     = "fs"
	BackendS3     = "s3"
	BackendGCS    = "gcs"
	BackendAzblob = "azblob"
)

// Location says where a broker's durable root is, with the broker's own
// names (storage.durable.*). Credentials are not part of it: each backend
// finds them where its SDK looks by default (environment, shared files,
// instance or workload identity).
type Location struct {
	Backend string
	// Root is the durable root: s3://bucket/prefix, gcs://bucket/prefix
	// (or gs://), container/prefix (or azblob://container/prefix), or a
	// directory (or file:///dir) for fs.
	Root string
	// Region of the S3 bucket; empty: the environment's, else us-east-1.
	Region string
	// Endpoint of an S3-compatible store (MinIO: http://host:9000), of the
	// GCS JSON API, or the Azure service URL (https://account.blob.core.windows.net).
	Endpoint string
	// PathStyle addresses S3 buckets as endpoint/bucket rather than
	// bucket.endpoint; nil: path-style exactly when Endpoint is set, as the
	// broker does.
	PathStyle *bool
}

// SplitRoot returns the bucket (container, or directory for fs) and the
// key prefix of loc.Root, or an error saying what shape the root must have.
func (loc Location) SplitRoot() (bucket, prefix string, err error) {
	root := strings.TrimSpace(loc.Root)
	if root == "" {
		return "", "", errors.New("the root is empty")
	}
	switch loc.Backend {
	case BackendFS:
		return strings.TrimPrefix(root, "file://"), "", nil
	case BackendS3:
		return splitURI(root, "s3", "s3://bucket/prefix")
	case BackendGCS:
		if strings.HasPrefix(root, "gs://") {
			return splitURI(root, "gs", "gcs://bucket/prefix")
		}
		return splitURI(root, "gcs", "gcs://bucket/prefix")
	case BackendAzblob:
		return splitURI("azblob://"+strings.TrimPrefix(root, "azblob://"), "azblob", "container/prefix")
	}
	return "", "", fmt.Errorf("unknown backend %q: use fs, s3, gcs or azblob", loc.Backend)
}

func splitURI(root, scheme, shape string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(root, scheme+"://")
	if !ok {
		return "", "", fmt.Errorf("%q is not of the form %s", root, shape)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("%q names no bucket: use the form %s", root, shape)
	}
	return bucket, strings.Trim(prefix, "/"), nil
}

// OpenBlobStore opens the store at loc. Nothing is read yet: Probe checks
// that the root can be listed.
func OpenBlobStore(ctx context.Context, loc Location) (*BlobStore, error) {
	name, prefix, err := loc.SplitRoot()
	if err != nil {
		return nil, err
	}
	var b *blob.Bucket
	var closeFn func()
	switch loc.Backend {
	case BackendFS:
		// Read only: never write attribute sidecar files into the broker's root.
		b, err = fileblob.OpenBucket(name, &fileblob.Options{Metadata: fileblob.MetadataDontWrite})
	case BackendS3:
		b, closeFn, err = openS3(ctx, loc, name)
	case BackendGCS:
		b, err = openGCS(ctx, loc, name)
	case BackendAzblob:
		b, err = openAzblob(ctx, loc, name)
	}
	if err != nil {
		return nil, err
	}
	if prefix != "" {
		b = blob.PrefixedBucket(b, prefix+"/")
	}
	return newBlobStore(b, loc.Backend+" root "+loc.Root, closeFn), nil
}

func openS3(ctx context.Context, loc Location, bucket string) (*blob.Bucket, func(), error) {
	opts := []func(*awsconfig.LoadOptions) error{
		// S3-compatible stores (MinIO, older ones) reject or omit the
		// newer default checksums; reading segments does not need them.
		awsconfig.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		awsconfig.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if loc.Region != "" {
		opts = append(opts, awsconfig.WithRegion(loc.Region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("load the AWS configuration (environment, shared config files): %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1" // any region works for an S3-compatible endpoint
	}
	// A transport of our own (with the SDK's settings, AWS_CA_BUNDLE
	// included), so that Close can drop its idle connections.
	var transport *http.Transport
	if bc, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
		transport = bc.GetTransport()
	} else {
		transport = awshttp.NewBuildableClient().GetTransport()
	}
	cfg.HTTPClient = &http.Client{
		Transport: transport,
		// As the SDK's client: a redirect is an answer (S3's wrong region).
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	pathStyle := loc.Endpoint != ""
	if loc.PathStyle != nil {
		pathStyle = *loc.PathStyle
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if loc.Endpoint != "" {
			o.BaseEndpoint = aws.String(loc.Endpoint)
		}
		o.UsePathStyle = pathStyle
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	b, err := s3blob.OpenBucket(ctx, client, bucket, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("open S3 bucket %s: %w", bucket, err)
	}
	return b, transport.CloseIdleConnections, nil
}

func openGCS(ctx context.Context, loc Location, bucket string) (*blob.Bucket, error) {
	creds, err := gcp.DefaultCredentials(ctx)
	if err != nil {
		return nil, fmt.Errorf("find Google credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's application default credentials, or the metadata server): %w", err)
	}
	client, err := gcp.NewHTTPClient(gcp.DefaultTransport(), gcp.CredentialsTokenSource(creds))
	if err != nil {
		return nil, fmt.Errorf("open GCS bucket %s: %w", bucket, err)
	}
	var opts gcsblob.Options
	if loc.Endpoint != "" {
		opts.ClientOptions = append(opts.ClientOptions, option.WithEndpoint(loc.Endpoint))
	}
	b, err := gcsblob.OpenBucket(ctx, client, bucket, &opts)
	if err != nil {
		return nil, fmt.Errorf("open GCS bucket %s: %w", bucket, err)
	}
	return b, nil
}

func openAzblob(ctx context.Context, loc Location, container string) (*blob.Bucket, error) {
	svc := azureblob.ServiceURL(loc.Endpoint)
	if svc == "" {
		u, err := azureblob.NewServiceURL(azureblob.NewDefaultServiceURLOptions())
		if err != nil {
			return nil, fmt.Errorf("no Azure storage account: set the endpoint (https://<account>.blob.core.windows.net) "+
				"or AZURE_STORAGE_ACCOUNT: %w", err)
		}
		svc = u
	}
	client, err := azureblob.NewDefaultClient(svc, azureblob.ContainerName(container))
	if err != nil {
		return nil, fmt.Errorf("open Azure container %s: %w", container, err)
	}
	b, err := azureblob.OpenBucket(ctx, client, nil)
	if err != nil {
		return nil, fmt.Errorf("open Azure container %s: %w", container, err)
	}
	return b, nil
}
