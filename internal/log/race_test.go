//go:build race

package log

// raceEnabled: the race detector allocates on synchronisation, so
// allocation guards run in the non-race pass of `make test`.
const raceEnabled = true
