// Command connector is the Danube connector as a standalone Conduit plugin:
// copy the binary into Conduit's connectors directory.
package main

import (
	sdk "github.com/conduitio/conduit-connector-sdk"

	danube "github.com/conduitio-labs/conduit-connector-danube"
	"github.com/conduitio-labs/conduit-connector-danube/internal/plugincodec"
)

func main() {
	// Records cross the plugin protocol without the protobuf library's
	// reflection (see plugincodec).
	plugincodec.Register()
	sdk.Serve(danube.Connector)
}
