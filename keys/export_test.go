package keys

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

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

// ExtraKEK puts one more KEK of version under the label of (org, region),
// as a process that lost the race did: without a CKA_ID (legacy, as made
// before the ids) or with a random one (another host).
func ExtraKEK(ctx context.Context, p *PKCS11, org, region string, version int, withID bool) error {
	return p.do(ctx, func(c *p11conn, sh pkcs11.SessionHandle) error {
		if withID {
			_, err := generateAES(c, sh, labelKEK+strconv.Itoa(version)+"/"+ro(org, region))
			return err
		}
		_, err := c.ctx.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, KeySize),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, labelKEK+strconv.Itoa(version)+"/"+ro(org, region)),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		})
		return err
	})
}

// ExtraIndexKey puts one more index key of org in the token, without a
// CKA_ID, as the code before the ids made them.
func ExtraIndexKey(ctx context.Context, p *PKCS11, org string) error {
	return p.do(ctx, func(c *p11conn, sh pkcs11.SessionHandle) error {
		_, err := c.ctx.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_GENERIC_SECRET_KEY_GEN, nil)}, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, KeySize),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, labelIndex+org),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		})
		return err
	})
}

// WrapUnder wraps dek for a under the i-th KEK (by CKA_ID) of version
// a.KEKVersion, naming it if it has an id: what the process that made
// that KEK wrote.
func WrapUnder(ctx context.Context, p *PKCS11, a DEKAD, dek []byte, i int) ([]byte, error) {
	var out []byte
	err := p.do(ctx, func(c *p11conn, sh pkcs11.SessionHandle) error {
		if err := c.scan(sh); err != nil {
			return err
		}
		c.mu.Lock()
		objs := c.keks[ro(a.Org, a.Region)][a.KEKVersion]
		c.mu.Unlock()
		if i >= len(objs) {
			return fmt.Errorf("no KEK %d of v%d", i, a.KEKVersion)
		}
		iv := make([]byte, gcmIVSize)
		rand.Read(iv)
		params := pkcs11.NewGCMParams(iv, a.bytes(), gcmTagBits)
		defer params.Free()
		if err := c.ctx.EncryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, objs[i].h); err != nil {
			return err
		}
		ct, err := c.ctx.Encrypt(sh, dek)
		out = encodeWrapped(objs[i].id, iv, ct)
		return err
	})
	return out, err
}

// Claim puts another process's claim on what in the token, made at.
func Claim(ctx context.Context, p *PKCS11, what string, at time.Time) error {
	return p.do(ctx, func(c *p11conn, sh pkcs11.SessionHandle) error {
		id := make([]byte, keyIDSize)
		rand.Read(id)
		_, err := c.ctx.CreateObject(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, labelClaim+what),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, binary.BigEndian.AppendUint64(id, uint64(at.UnixNano()))),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		})
		return err
	})
}
