package vault

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/sekisho/sekisho/keys"
)

// The DEK cache is bounded in count (least recently used out first) and in
// time, finds a key only with the same wrapped bytes, wipes what it evicts,
// hands out copies, and drops an org's region on purge.
func TestDEKCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newDEKCache(3, time.Minute, func() time.Time { return now })
	ad := func(i int) keys.DEKAD {
		return keys.DEKAD{Org: "operator", Region: "jp", Collection: "users", RecordID: fmt.Sprint(i), KEKVersion: 1}
	}
	var held [][]byte
	for i := range 3 {
		dek := bytes.Repeat([]byte{byte(i + 1)}, 32)
		c.put(ad(i), []byte("w"), dek)
		held = append(held, dek)
	}
	if c.get(ad(0), []byte("other wrapping")) != nil {
		t.Fatal("a key was found under other wrapped bytes")
	}
	got := c.get(ad(0), []byte("w")) // 0 is now the most recently used
	if !bytes.Equal(got, held[0]) {
		t.Fatalf("get = %x", got)
	}
	clear(got)
	if !bytes.Equal(c.get(ad(0), []byte("w")), held[0]) {
		t.Fatal("clearing the copy changed the cached key")
	}
	// The entry of record 1 is kept to check it is wiped when evicted.
	e1 := c.m[key(ad(1), []byte("w"))].Value.(*dekEntry)
	c.put(ad(3), []byte("w"), held[0])
	if c.len() != 3 || c.get(ad(1), []byte("w")) != nil {
		t.Fatalf("the least recently used key was not evicted (len %d)", c.len())
	}
	if !bytes.Equal(e1.dek, make([]byte, 32)) {
		t.Fatalf("the evicted key was not wiped: %x", e1.dek)
	}
	now = now.Add(2 * time.Minute)
	if c.get(ad(0), []byte("w")) != nil {
		t.Fatal("an expired key was returned")
	}
	now = now.Add(-2 * time.Minute)
	c.put(keys.DEKAD{Org: "affiliate", Region: "jp", Collection: "users", RecordID: "x", KEKVersion: 1}, []byte("w"), held[2])
	c.purge("operator", "jp")
	if c.len() != 1 {
		t.Fatalf("after purging operator/jp %d keys are left, want affiliate's only", c.len())
	}
	off := newDEKCache(-1, 0, time.Now)
	off.put(ad(0), []byte("w"), held[2])
	if off.get(ad(0), []byte("w")) != nil || off.len() != 0 {
		t.Fatal("a disabled cache kept a key")
	}
}
