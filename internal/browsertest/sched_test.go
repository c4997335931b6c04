package browsertest

import (
	"flag"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The suite's tests run in parallel, at most slots at once, the longest
// first.
//
// How many: -parallel N when given, else AERODISK_BROWSER_PARALLEL, else
// defaultParallel. go test's own limit (-test.parallel, GOMAXPROCS by
// default) is lifted above the number of tests, so this one alone decides
// which test runs next: go test would start its tests in the order they
// reach t.Parallel, which puts every subtest behind every top-level test,
// and the suite would end with its longest tests running alone.
//
// Which first: the one with the highest cost (roughly its seconds when run
// alone on the 2-core machine the suite is timed on), then the one that
// asked first. The suite lasts at least as long as its longest test, so
// that one starts at once and the short ones fill the gaps.

// defaultParallel is the number of tests that run at once unless told
// otherwise. Most of a test's time is spent waiting — on fsync, Web Locks,
// timers, another tab — so on 2 cores more tests than cores keeps both
// busy (measured: see the report of issue 12, item 12).
const defaultParallel = 4

// costs are the tests that take long, by top-level name: roughly their
// seconds alone (each backend's subtest counts on its own). A test not
// named costs 1.
var costs = map[string]int{
	"TestLayerCrashes":                 80, // 20 tab crashes per backend; IndexedDB's subtest is the longer
	"TestTwoTabsOpenDuringRenames":     25,
	"TestLargeImportFlatMemory":        25,
	"TestChannelRefusals":              14, // two 5 s waits for a dead disk worker's silence
	"TestChannelModel":                 12,
	"TestDeviceWriteRead":              19, // IndexedDB's subtest; OPFS's takes 3
	"TestAbortRace":                    16,
	"TestTabCrashes":                   13,
	"TestTwoTabsImportsAgainstOpens":   12,
	"TestTamperedCatalogs":             10,
	"TestDeviceCrash":                  9,
	"TestSweepOnlyOwnGarbage":          8,
	"TestPageImportResponsive":         8,
	"TestImportConverted":              5,
	"TestExportRoundTrip":              5,
	"TestTwoTabsDeletesAgainstExports": 5,
	"TestStreamSurvivesGC":             4,
	"TestDeviceTwoTabs":                2,
	"TestDeviceRefusals":               2,
}

var sched struct {
	mu      sync.Mutex
	slots   int // tests that may run at once
	running int
	seq     int
	waiting []*waiter
}

type waiter struct {
	cost, seq int
	ready     chan struct{}
}

// initParallel reads the limit (TestMain calls it after flag.Parse) and
// lifts go test's own.
func initParallel() {
	n := defaultParallel
	if v, err := strconv.Atoi(os.Getenv("AERODISK_BROWSER_PARALLEL")); err == nil && v > 0 {
		n = v
	}
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "test.parallel" {
			if v, err := strconv.Atoi(f.Value.String()); err == nil && v > 0 {
				n = v
			}
		}
	})
	sched.slots = n
	flag.Set("test.parallel", "10000")
}

// parallel makes t a parallel test and waits for a slot, which it keeps
// until t has ended (its cleanups included: its tabs closed, its origin
// cleared). Every test that drives the browser calls it (eachBackend does
// for its subtests), first thing.
func parallel(t *testing.T) {
	t.Parallel()
	top, _, _ := strings.Cut(t.Name(), "/")
	cost, ok := costs[top]
	if !ok {
		cost = 1
	}
	w := &waiter{cost: cost, ready: make(chan struct{})}
	sched.mu.Lock()
	sched.seq++
	w.seq = sched.seq
	sched.waiting = append(sched.waiting, w)
	admit()
	sched.mu.Unlock()
	asked := time.Now()
	<-w.ready
	started := time.Now()
	t.Cleanup(func() {
		t.Logf("ran %.1f s (waited %.1f s for one of %d slots)", time.Since(started).Seconds(), started.Sub(asked).Seconds(), sched.slots)
		sched.mu.Lock()
		sched.running--
		admit()
		sched.mu.Unlock()
	})
}

// admit starts waiting tests while there are free slots, the costliest
// first (sched.mu held).
func admit() {
	for sched.running < max(sched.slots, 1) && len(sched.waiting) > 0 {
		best := 0
		for i, w := range sched.waiting {
			b := sched.waiting[best]
			if w.cost > b.cost || (w.cost == b.cost && w.seq < b.seq) {
				best = i
			}
		}
		w := sched.waiting[best]
		sched.waiting = append(sched.waiting[:best], sched.waiting[best+1:]...)
		sched.running++
		close(w.ready)
	}
}
