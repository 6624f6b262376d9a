package danube

import _ "embed"

// specs is the connector specification. Name, summary, description and
// author are written by hand in connector.yaml; the parameter lists are
// generated from the config structs by `make generate`.
//
//go:embed connector.yaml
var specs string

// version is stamped at build time with
// -ldflags "-X 'github.com/conduitio-labs/conduit-connector-danube.version=v1.2.3'".
// "(devel)" marks a build without a release version.
var version = "(devel)"
