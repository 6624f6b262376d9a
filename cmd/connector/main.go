// Command connector is the Danube connector as a standalone Conduit plugin:
// copy the binary into Conduit's connectors directory.
package main

import (
	sdk "github.com/conduitio/conduit-connector-sdk"

	danube "github.com/conduitio-labs/conduit-connector-danube"
)

func main() {
	sdk.Serve(danube.Connector)
}
