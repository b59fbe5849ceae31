// Go peer of the Axon benchmark suite (Savina workloads).
//
// One goroutine per actor, one buffered channel per actor as its mailbox,
// GOMAXPROCS = number of cores. Usage: axbench_go NAME [PARAMS...]
// Prints exactly one line on stdout:
//
//	RESULT <name> go <wall_seconds> <ops> <ops_per_second> <unit>[ key=value...]
//
// Every workload checks its own result and exits 1 with a message on stderr
// when the check fails.
package main

import (
	"bufio"
	"fmt"
	"math"
	"math/rand"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Mailbox capacities. A buffered channel is a bounded mailbox: a sender
// blocks when it is full. Flooded receivers get a large buffer so the
// producer is not woken/parked on every message; request/reply actors only
// ever hold a few messages.
const (
	floodCap = 4096 // count, fjthrput, fjcreate collector, footprint collector
	smallCap = 16   // default mailbox of an actor that holds few messages
)

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "axbench go: "+format+"\n", a...)
	os.Exit(1)
}

func result(name string, wall float64, ops int64, unit string, extra ...string) {
	line := fmt.Sprintf("RESULT %s go %.6f %d %.1f %s", name, wall, ops, float64(ops)/wall, unit)
	if len(extra) > 0 {
		line += " " + strings.Join(extra, " ")
	}
	fmt.Println(line)
}

func param(args []string, i int, def int64) int64 {
	if i >= len(args) {
		return def
	}
	v, err := strconv.ParseInt(args[i], 10, 64)
	if err != nil || v <= 0 {
		fail("bad parameter %q", args[i])
	}
	return v
}

// ---------------------------------------------------------------- pingpong

func pingpong(n int64) {
	start := time.Now()
	pingBox := make(chan int64, smallCap)
	pongBox := make(chan int64, smallCap)
	done := make(chan int64, 1)
	// pong: answers every ping; a negative value stops it.
	go func() {
		for v := range pongBox {
			if v < 0 {
				return
			}
			pingBox <- v
		}
	}()
	// ping: N round trips, one message in flight.
	go func() {
		var trips int64
		pongBox <- 0
		for v := range pingBox {
			if v != trips {
				fail("pingpong: got %d, expected %d", v, trips)
			}
			trips++
			if trips == n {
				pongBox <- -1
				done <- trips
				return
			}
			pongBox <- trips
		}
	}()
	trips := <-done
	wall := time.Since(start).Seconds()
	if trips != n {
		fail("pingpong: %d round trips, expected %d", trips, n)
	}
	result("pingpong", wall, 2*n, "msgs")
}

// ------------------------------------------------------------------- count

type countMsg struct {
	get   bool
	reply chan int64
}

func count(n int64) {
	start := time.Now()
	counterBox := make(chan countMsg, floodCap)
	done := make(chan int64, 1)
	go func() { // counter
		var total int64
		for m := range counterBox {
			if m.get {
				m.reply <- total
				return
			}
			total++
		}
	}()
	go func() { // producer
		reply := make(chan int64, 1)
		for i := int64(0); i < n; i++ {
			counterBox <- countMsg{}
		}
		counterBox <- countMsg{get: true, reply: reply}
		done <- <-reply
	}()
	total := <-done
	wall := time.Since(start).Seconds()
	if total != n {
		fail("count: total %d, expected %d", total, n)
	}
	result("count", wall, n, "msgs")
}

// ---------------------------------------------------------------- fjthrput

// The Savina "performComputation": sin(theta)^2; the sum is kept so the
// computation cannot be optimised away.
func compute(theta float64) float64 {
	s := math.Sin(theta)
	return s * s
}

type fjMsg struct {
	stop bool
}

type fjReport struct {
	got int64
	sum float64
}

func fjthrput(a, n int64) {
	start := time.Now()
	boxes := make([]chan fjMsg, a)
	reports := make(chan fjReport, a)
	for i := range boxes {
		boxes[i] = make(chan fjMsg, floodCap)
		go func(box chan fjMsg) {
			var got int64
			var sum float64
			for m := range box {
				if m.stop {
					reports <- fjReport{got, sum}
					return
				}
				got++
				sum += compute(37.2)
			}
		}(boxes[i])
	}
	go func() { // producer
		for j := int64(0); j < n; j++ {
			for _, b := range boxes {
				b <- fjMsg{}
			}
		}
		for _, b := range boxes {
			b <- fjMsg{stop: true}
		}
	}()
	bad := int64(-1)
	for i := int64(0); i < a; i++ {
		r := <-reports
		if r.got != n || r.sum <= 0 {
			bad = r.got
		}
	}
	wall := time.Since(start).Seconds()
	if bad >= 0 {
		fail("fjthrput: an actor got %d messages, expected %d", bad, n)
	}
	result("fjthrput", wall, a*n, "msgs")
}

// ---------------------------------------------------------------- fjcreate

func fjcreate(n int64) {
	start := time.Now()
	collector := make(chan float64, floodCap)
	done := make(chan int64, 1)
	go func() { // collector
		var got int64
		for v := range collector {
			if v <= 0 {
				fail("fjcreate: bad reply %f", v)
			}
			got++
			if got == n {
				done <- got
				return
			}
		}
	}()
	go func() { // spawner
		for i := int64(0); i < n; i++ {
			box := make(chan float64, 1)
			go func() { // a fork-join actor: one message, compute, reply, stop
				theta := <-box
				collector <- compute(theta)
			}()
			box <- 37.2
		}
	}()
	got := <-done
	wall := time.Since(start).Seconds()
	if got != n {
		fail("fjcreate: collector got %d replies, expected %d", got, n)
	}
	result("fjcreate", wall, n, "actors")
}

// -------------------------------------------------------------- threadring

func threadring(r, h int64) {
	start := time.Now()
	boxes := make([]chan int64, r)
	for i := range boxes {
		boxes[i] = make(chan int64, smallCap)
	}
	done := make(chan int64, 1)
	for i := range boxes {
		go func(id int, in, next chan int64) {
			for v := range in {
				if v == 0 {
					done <- int64(id)
					return
				}
				next <- v - 1
			}
		}(i, boxes[i], boxes[(i+1)%int(r)])
	}
	boxes[0] <- h
	last := <-done
	wall := time.Since(start).Seconds()
	// The token starts at actor 0 with H hops left; after H hops it is at H mod R.
	if last != h%r {
		fail("threadring: token stopped at actor %d, expected %d", last, h%r)
	}
	for _, b := range boxes {
		close(b)
	}
	result("threadring", wall, h, "hops")
}

// --------------------------------------------------------------- chameneos

const (
	blue = iota
	red
	yellow
	faded
)

func complement(a, b int) int {
	if a == b {
		return a
	}
	return 3 - a - b // blue(0), red(1), yellow(2): the third colour
}

type mallMsg struct {
	count  bool // a faded chameneo's meeting count
	colour int
	from   int
	n      int64
}

type chamMsg struct {
	kind   int // 0 meet (forwarded by the mall), 1 change, 2 exit
	colour int
	from   int
}

func chameneos(m, n int64) {
	start := time.Now()
	// Each chameneo has at most one message to the mall in flight (a meet
	// or its final count), so with M slots no send to the mall ever blocks.
	mall := make(chan mallMsg, m)
	chams := make([]chan chamMsg, m)
	for i := range chams {
		chams[i] = make(chan chamMsg, smallCap)
	}
	type outcome struct{ meetings, sum, faded int64 }
	done := make(chan outcome, 1)
	go func() { // mall
		left := n
		waiting := -1
		var nfaded, sum int64
		for msg := range mall {
			if msg.count {
				nfaded++
				sum += msg.n
				if nfaded == m {
					done <- outcome{n - left, sum, nfaded}
					return
				}
				continue
			}
			if left > 0 {
				if waiting < 0 {
					waiting = msg.from
				} else {
					left--
					chams[waiting] <- chamMsg{kind: 0, colour: msg.colour, from: msg.from}
					waiting = -1
				}
			} else {
				chams[msg.from] <- chamMsg{kind: 2}
			}
		}
	}()
	for i := range chams {
		go func(id int, box chan chamMsg) {
			colour := id % 3
			var meetings int64
			mall <- mallMsg{colour: colour, from: id}
			for msg := range box {
				switch msg.kind {
				case 0:
					colour = complement(colour, msg.colour)
					meetings++
					chams[msg.from] <- chamMsg{kind: 1, colour: colour, from: id}
					mall <- mallMsg{colour: colour, from: id}
				case 1:
					colour = msg.colour
					meetings++
					mall <- mallMsg{colour: colour, from: id}
				case 2:
					colour = faded
					mall <- mallMsg{count: true, n: meetings, from: id}
					return
				}
			}
		}(i, chams[i])
	}
	o := <-done
	wall := time.Since(start).Seconds()
	if o.meetings != n || o.sum != 2*n {
		fail("chameneos: mall counted %d meetings, chameneos %d, expected %d and %d",
			o.meetings, o.sum, n, 2*n)
	}
	result("chameneos", wall, n, "meetings")
}

// --------------------------------------------------------------------- big

type bigMsg struct {
	kind int // 0 ping, 1 pong, 2 exit
	from int
}

func big(a, m int64) {
	start := time.Now()
	// Each actor has at most one ping outstanding, so a mailbox holds at most
	// A-1 pings + 1 pong + 1 exit: with A+1 slots no send ever blocks (and a
	// cycle of full mailboxes, i.e. a deadlock, is impossible).
	boxes := make([]chan bigMsg, a)
	for i := range boxes {
		boxes[i] = make(chan bigMsg, a+1)
	}
	sink := make(chan int64, a)
	var wg sync.WaitGroup
	for i := range boxes {
		wg.Add(1)
		go func(id int, box chan bigMsg) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(id) + 1))
			var pongs int64
			sendPing := func() {
				t := rng.Intn(int(a) - 1)
				if t >= id {
					t++
				}
				boxes[t] <- bigMsg{kind: 0, from: id}
			}
			sendPing()
			for msg := range box {
				switch msg.kind {
				case 0:
					boxes[msg.from] <- bigMsg{kind: 1, from: id}
				case 1:
					pongs++
					if pongs == m {
						sink <- pongs
					} else {
						sendPing()
					}
				case 2:
					return
				}
			}
		}(i, boxes[i])
	}
	bad := int64(-1)
	for i := int64(0); i < a; i++ {
		if p := <-sink; p != m {
			bad = p
		}
	}
	wall := time.Since(start).Seconds()
	for _, b := range boxes {
		b <- bigMsg{kind: 2}
	}
	wg.Wait()
	if bad >= 0 {
		fail("big: an actor got %d pongs, expected %d", bad, m)
	}
	result("big", wall, 2*a*m, "msgs")
}

// --------------------------------------------------------------- footprint

func vmRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		fail("footprint: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "VmRSS:") {
			fields := strings.Fields(line)
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			return kb * 1024
		}
	}
	fail("footprint: no VmRSS in /proc/self/status")
	return 0
}

func footprint(n int64) {
	runtime.GC()
	acks := make(chan struct{}, floodCap)
	boxes := make([]chan struct{}, n)
	var ready sync.WaitGroup
	ready.Add(int(n))
	before := vmRSS()
	start := time.Now()
	for i := range boxes {
		box := make(chan struct{}, smallCap)
		boxes[i] = box
		go func() { // idle until woken once; acks and stops
			ready.Done()
			<-box
			acks <- struct{}{}
		}()
	}
	ready.Wait() // every goroutine has run and is parked on its mailbox
	spawnS := time.Since(start).Seconds()
	after := vmRSS()
	wakeStart := time.Now()
	go func() {
		for _, b := range boxes {
			b <- struct{}{}
		}
	}()
	var got int64
	for got < n {
		<-acks
		got++
	}
	wakeS := time.Since(wakeStart).Seconds()
	wall := spawnS + wakeS
	if got != n {
		fail("footprint: %d acks, expected %d", got, n)
	}
	bpa := float64(after-before) / float64(n)
	result("footprint", wall, n, "actors",
		fmt.Sprintf("bytes_per_actor=%.0f", bpa),
		fmt.Sprintf("spawn_s=%.6f", spawnS),
		fmt.Sprintf("wake_s=%.6f", wakeS))
}

// ----------------------------------------------------------------- latency

// Nearest-rank percentile of sorted samples.
func percentile(s []int64, p float64) int64 {
	i := int(math.Ceil(p*float64(len(s)))) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}

func latency(n int64) {
	samples := make([]int64, n)
	start := time.Now()
	aBox := make(chan int64, smallCap)
	bBox := make(chan int64, smallCap)
	done := make(chan struct{})
	go func() { // echo
		for v := range bBox {
			aBox <- v
		}
	}()
	go func() { // timer: one message in flight, each round trip timed
		for i := int64(0); i < n; i++ {
			t0 := time.Now()
			bBox <- i
			if v := <-aBox; v != i {
				fail("latency: got %d, expected %d", v, i)
			}
			samples[i] = int64(time.Since(t0))
		}
		close(bBox)
		close(done)
	}()
	<-done
	latencyResult("latency", time.Since(start).Seconds(), samples)
}

// latencyResult prints a latency RESULT line: nearest-rank percentiles of
// the round-trip samples (ns), sorted here.
func latencyResult(name string, wall float64, samples []int64) {
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	if samples[0] <= 0 {
		fail("%s: non-positive round trip", name)
	}
	result(name, wall, int64(len(samples)), "ns",
		fmt.Sprintf("p50_ns=%d", percentile(samples, 0.50)),
		fmt.Sprintf("p99_ns=%d", percentile(samples, 0.99)),
		fmt.Sprintf("p999_ns=%d", percentile(samples, 0.999)))
}

// ------------------------------------------------------ cross-core variants
// pingpong_x and latency_x: the ends of every pair forced apart. Go pins a
// goroutine only to an OS thread (runtime.LockOSThread), one goroutine per
// thread, so every end gets its own thread: each hand-off wakes a goroutine
// that can run only on another thread. With one pair that is Axon's
// structure (two threads); with P pairs it is 2P threads over GOMAXPROCS.

// crossPairs runs pairs pairs of n round trips with each end locked to its
// own thread; samples (n entries) only with one pair. Returns the wall time.
func crossPairs(pairs, n int64, samples []int64) float64 {
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(int(pairs))
	for p := int64(0); p < pairs; p++ {
		aBox := make(chan int64, smallCap)
		bBox := make(chan int64, smallCap)
		go func() { // echo, on its own thread; a negative value stops it
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for v := range bBox {
				if v < 0 {
					return
				}
				aBox <- v
			}
		}()
		go func() { // ping: n round trips, one message in flight, checked
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			defer wg.Done()
			for i := int64(0); i < n; i++ {
				var t0 time.Time
				if samples != nil {
					t0 = time.Now()
				}
				bBox <- i
				if v := <-aBox; v != i {
					fail("cross: got %d, expected %d", v, i)
				}
				if samples != nil {
					samples[i] = int64(time.Since(t0))
				}
			}
			bBox <- -1
		}()
	}
	wg.Wait()
	return time.Since(start).Seconds()
}

func pingpongX(pairs, n int64) {
	wall := crossPairs(pairs, n, nil)
	result("pingpong_x", wall, 2*pairs*n, "msgs")
}

func latencyX(n int64) {
	samples := make([]int64, n)
	latencyResult("latency_x", crossPairs(1, n, samples), samples)
}

func main() {
	runtime.GOMAXPROCS(runtime.NumCPU())
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: axbench_go NAME [PARAMS...]")
		os.Exit(2)
	}
	name, args := os.Args[1], os.Args[2:]
	switch name {
	case "pingpong":
		pingpong(param(args, 0, 3000000))
	case "count":
		count(param(args, 0, 15000000))
	case "fjthrput":
		fjthrput(param(args, 0, 60), param(args, 1, 200000))
	case "fjcreate":
		fjcreate(param(args, 0, 1000000))
	case "threadring":
		threadring(param(args, 0, 503), param(args, 1, 10000000))
	case "chameneos":
		m := param(args, 0, 100)
		if m < 2 {
			fail("chameneos: needs at least 2 chameneos")
		}
		chameneos(m, param(args, 1, 2000000))
	case "big":
		a := param(args, 0, 120)
		if a < 2 {
			fail("big: needs at least 2 actors")
		}
		big(a, param(args, 1, 50000))
	case "footprint":
		footprint(param(args, 0, 1000000))
	case "pingpong_x":
		pingpongX(param(args, 0, 4), param(args, 1, 500000))
	case "latency_x":
		latencyX(param(args, 0, 200000))
	case "latency":
		latency(param(args, 0, 1000000))
	default:
		fmt.Fprintf(os.Stderr, "axbench go: unknown workload %q\n", name)
		os.Exit(2)
	}
}
