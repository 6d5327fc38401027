//go:build !race

package adversarial

const raceOn = false
