// Package danube is a Conduit connector for the Danube messaging broker: a
// source that reads topics through durable subscriptions and a destination
// that writes records to topics.
package danube

//go:generate go tool -modfile=tools/go.mod conn-sdk-cli specgen

import sdk "github.com/conduitio/conduit-connector-sdk"

// Connector is what Conduit loads: the specification plus the source and
// destination constructors. conn-sdk-cli specgen reads this variable.
var Connector = sdk.Connector{
	NewSpecification: sdk.YAMLSpecification(specs, version),
	NewSource:        NewSource,
	NewDestination:   NewDestination,
}
