// Package wire is how this connector puts a Conduit record into a Danube
// message and takes it out again: the destination writes the record, in the
// format sdk.record.format names (by default OpenCDC JSON, which Encoder
// writes), as the payload and marks it with the FormatAttribute attribute;
// the source recognises the mark and restores the record with Decode.
package wire

// FormatAttribute is the message attribute naming the format of a payload
// that holds a whole record ("sdk.record.format").
const FormatAttribute = "conduit.record.format"

// FormatOpenCDCJSON is the FormatAttribute value of an OpenCDC JSON record,
// the format the source restores.
const FormatOpenCDCJSON = "opencdc/json"
