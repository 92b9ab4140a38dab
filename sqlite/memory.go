package sqlite

// The SQLite library linked by github.com/mattn/go-sqlite3 is the one in
// this process; its memory counters are process-wide.

/*
extern long long sqlite3_memory_used(void);
extern long long sqlite3_memory_highwater(int);
*/
import "C"

// MemoryUsed returns the bytes the SQLite library of this process holds
// now (sqlite3_memory_used: page caches, schema, statements of every
// connection of every Store), and its high-water mark since the process
// started.
func MemoryUsed() (now, highwater int64) {
	return int64(C.sqlite3_memory_used()), int64(C.sqlite3_memory_highwater(0))
}
