//go:build race

package adversarial

// raceOn: the race detector slows everything five to ten times; floods
// are scaled down to keep the suite's time bounded.
const raceOn = true
