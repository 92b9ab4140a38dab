//go:build race

package vault_test

// raceEnabled: the race detector slows every memory access; the load test
// keeps its concurrency and shrinks its record count under it.
const raceEnabled = true
