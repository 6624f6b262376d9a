package source

import (
	"errors"
	"strings"
	"testing"

	"github.com/conduitio/conduit-commons/opencdc"
	"github.com/matryer/is"
)

func TestPosition_RoundTrip(t *testing.T) {
	is := is.New(t)
	want := Position{
		Version: PositionVersion, Mode: ModeCDC, Topic: "/default/orders", Partition: 1, Offset: 42, Seq: 7,
		Emitted: map[string]offsetSet{
			"/default/orders-part-0": {{0, 40}},
			"/default/orders-part-1": {{3, 9}, {11, 42}},
		},
	}
	raw, err := want.Marshal()
	is.NoErr(err)
	is.Equal(string(raw), `{"v":1,"mode":"cdc","topic":"/default/orders","partition":1,"offset":42,"seq":7,`+
		`"emitted":{"/default/orders-part-0":[[0,40]],"/default/orders-part-1":[[3,9],[11,42]]}}`)
	got, err := ParsePosition(raw)
	is.NoErr(err)
	is.Equal(got, want)
}

func TestPosition_RoundTripWithoutEmitted(t *testing.T) {
	is := is.New(t)
	want := Position{Version: PositionVersion, Mode: ModeCDC, Topic: "/default/t", Seq: 1}
	raw, err := want.Marshal()
	is.NoErr(err)
	is.Equal(string(raw), `{"v":1,"mode":"cdc","topic":"/default/t","partition":0,"offset":0,"seq":1}`)
	got, err := ParsePosition(raw)
	is.NoErr(err)
	is.Equal(got, want)
}

func TestParsePosition_RejectsWhatItDoesNotKnow(t *testing.T) {
	const valid = `"mode":"cdc","topic":"/default/t","partition":0,"offset":1,"seq":1`
	tests := []struct {
		name, pos, wantErr string
	}{
		{"not JSON", `abc`, "not a Danube source position"},
		{"another connector's position", `{"GroupID":"g","Topic":"t"}`, `has no version ("v")`},
		{"newer version", `{"v":2,` + valid + `}`, "version 2 is not supported"},
		{"unknown field", `{"v":1,` + valid + `,"extra":1}`, `unknown field "extra"`},
		{"trailing data", `{"v":1,` + valid + `}{}`, "after top-level value"},
		{"unknown mode", `{"v":1,"mode":"replay","topic":"/default/t","partition":0,"offset":1,"seq":1}`, `mode "replay" is not supported`},
		{"no topic", `{"v":1,"mode":"cdc","partition":0,"offset":1,"seq":1}`, `"topic" is empty`},
		{"negative partition", `{"v":1,"mode":"cdc","topic":"/default/t","partition":-1,"offset":1,"seq":1}`, `"partition" is -1`},
		{"unsorted spans", `{"v":1,` + valid + `,"emitted":{"/default/t":[[5,9],[1,2]]}}`, "not sorted, disjoint ranges"},
		{"adjacent spans", `{"v":1,` + valid + `,"emitted":{"/default/t":[[1,2],[3,4]]}}`, "not sorted, disjoint ranges"},
		{"inverted span", `{"v":1,` + valid + `,"emitted":{"/default/t":[[9,5]]}}`, "not sorted, disjoint ranges"},
		{"span of three", `{"v":1,` + valid + `,"emitted":{"/default/t":[[1,2,3]]}}`, "each range must be [first,last]"},
		{"empty spans", `{"v":1,` + valid + `,"emitted":{"/default/t":[]}}`, `"emitted" of "/default/t" is empty`},
		{"negative offset", `{"v":1,"mode":"cdc","topic":"/default/t","partition":0,"offset":-1,"seq":1}`, "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			_, err := ParsePosition(opencdc.Position(tt.pos))
			is.True(err != nil)
			is.True(errors.Is(err, ErrInvalidPosition))
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not say %q", err, tt.wantErr)
			}
		})
	}
}

func TestParsePosition_AcceptsSnapshotMode(t *testing.T) {
	is := is.New(t)
	p, err := ParsePosition(opencdc.Position(`{"v":1,"mode":"snapshot","topic":"/default/t","partition":0,"offset":4,"seq":5,` +
		`"emitted":{"/default/t":[[0,4]]}}`))
	is.NoErr(err)
	is.Equal(p.Mode, ModeSnapshot)
	is.Equal(p.Emitted, map[string]offsetSet{"/default/t": {{0, 4}}})
}
