package main

import (
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

func TestPercentileIsNearestRank(t *testing.T) {
	is := is.New(t)
	var vals []time.Duration
	for i := 1; i <= 100; i++ {
		vals = append(vals, time.Duration(i)*time.Millisecond)
	}
	is.Equal(percentile(vals, 50), 50*time.Millisecond)
	is.Equal(percentile(vals, 99), 99*time.Millisecond)
	is.Equal(percentile(vals[:1], 99), time.Millisecond)
	is.Equal(percentile(nil, 50), time.Duration(0))
}

func TestSpreadOfOddAndEvenCounts(t *testing.T) {
	is := is.New(t)
	is.Equal(spreadOf([]float64{3, 1, 2}), spread{Min: 1, Median: 2, Max: 3})
	is.Equal(spreadOf([]float64{4, 1, 3, 2}), spread{Min: 1, Median: 2.5, Max: 4})
}

func TestArrivalsMeasureFromCreationOrFirstArrival(t *testing.T) {
	is := is.New(t)
	t0 := time.Unix(1000, 0)
	a := newArrivals(3)
	// Out of order, as a multi-partition read-back delivers them.
	a.add(t0.Add(10*time.Millisecond), t0.Add(30*time.Millisecond))
	a.add(t0, t0.Add(20*time.Millisecond))
	a.add(t0.Add(20*time.Millisecond), t0.Add(25*time.Millisecond))
	select {
	case <-a.done:
	default:
		t.Fatal("done not closed after the wanted count")
	}
	created := a.measure(fromCreation)
	is.Equal(created.Records, 3)
	is.Equal(created.Elapsed, 30*time.Millisecond) // first creation → last arrival
	is.Equal(created.P50, 20*time.Millisecond)
	is.Equal(created.P99, 20*time.Millisecond)
	is.Equal(a.measure(fromFirstArrival).Elapsed, 10*time.Millisecond) // first arrival → last
}

func TestCreatedAtOfFindsTheMetadataField(t *testing.T) {
	is := is.New(t)
	line := []byte(`{"position":"eA==","operation":"create","metadata":{"danube.offset":"7","opencdc.createdAt":"1700000000123456789"},"key":null}` + "\n")
	is.Equal(createdAtOf(line), time.Unix(0, 1700000000123456789))
	is.True(createdAtOf([]byte(`{"metadata":{}}`)).IsZero())
}

func TestAckedCountReadsThePipelinesCounter(t *testing.T) {
	is := is.New(t)
	exposition := `# TYPE conduit_pipeline_execution_duration_seconds histogram
conduit_pipeline_execution_duration_seconds_bucket{pipeline_name="bench",le="0.001"} 3
conduit_pipeline_execution_duration_seconds_count{pipeline_name="other"} 7
conduit_pipeline_execution_duration_seconds_count{pipeline_name="bench"} 100000
`
	n, err := ackedCount(strings.NewReader(exposition), "bench")
	is.NoErr(err)
	is.Equal(n, 100000)
	n, err = ackedCount(strings.NewReader("# nothing yet\n"), "bench")
	is.NoErr(err)
	is.Equal(n, 0)
}

func TestProcParsing(t *testing.T) {
	is := is.New(t)
	// The command name may hold spaces and parentheses.
	stat := []byte("4242 (conduit (x) y) S 4200 4242 4200 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0 1000 0 0")
	cpu, err := cpuFromStat(stat)
	is.NoErr(err)
	is.Equal(cpu, 3*time.Second) // (250 + 50) ticks at 100 Hz
	ppid, err := parentFromStat(stat)
	is.NoErr(err)
	is.Equal(ppid, 4200)

	rss, err := peakRSSFromStatus([]byte("Name:\tconduit\nVmPeak:\t  900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\n"))
	is.NoErr(err)
	is.Equal(rss, int64(50<<20))
	_, err = peakRSSFromStatus([]byte("Name:\tx\n"))
	is.True(err != nil)
}

func TestArrivalsMarkReportsTheFirstArrival(t *testing.T) {
	is := is.New(t)
	a := newArrivals(3)
	is.True(a.mark(1))
	is.True(!a.mark(1)) // delivered again
	is.True(a.mark(2))
	is.True(a.mark(7)) // outside the numbered range: not tracked
	is.Equal(a.distinct(), 2)
}
