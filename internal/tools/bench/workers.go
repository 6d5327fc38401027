package bench

import (
	"sync"
	"time"
)

// load runs n workers at once, work(i) for i in [0, n), and adds up what
// they return: the messages, the latency samples and the first error.
func load(n int, work func(i int) (int64, []int64, error)) (total int64, samples []int64, first error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range n {
		wg.Go(func() {
			k, s, err := work(i)
			mu.Lock()
			defer mu.Unlock()
			total += k
			samples = append(samples, s...)
			first = cmp(first, err)
		})
	}
	wg.Wait()
	return total, samples, first
}

// writeLoop calls write with spec's payload until more says stop or write
// fails, and times each call when spec.Samples.
func writeLoop(spec LoadSpec, deadline time.Time, write func(p string) error) (n int64, samples []int64, err error) {
	fixed := filler(spec.Size)
	for more(spec, n, deadline) {
		p := fixed
		if spec.Stamp {
			p = stamp(spec.Size)
		}
		t0 := time.Now()
		if err = write(p); err != nil {
			break
		}
		n++
		if spec.Samples {
			samples = append(samples, int64(time.Since(t0)))
		}
	}
	return n, samples, err
}

// cmp keeps the first error.
func cmp(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
