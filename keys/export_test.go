package keys

import (
	"context"

	"github.com/miekg/pkcs11"
)

// KeyCounts reads the token again and counts the key objects of org: its
// index keys, and its KEKs of region by version.
func KeyCounts(ctx context.Context, p *PKCS11, org, region string) (index int, keks map[int]int, err error) {
	keks = map[int]int{}
	err = p.do(ctx, func(c *p11conn, sh pkcs11.SessionHandle) error {
		if err := c.scan(sh); err != nil {
			return err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		index = len(c.indexes[org])
		for v, objs := range c.keks[ro(org, region)] {
			keks[v] = len(objs)
		}
		return nil
	})
	return index, keks, err
}
