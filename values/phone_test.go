package values

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/internal/benchcpu"
)

func phoneField() sekisho.Field { return sekisho.Field{Name: "phone", Type: sekisho.TypePhone} }

// phoneSlow is the phone path without the fast path: Parse, IsValidNumber,
// Format(E164).
func phoneSlow(s, region string) (string, bool) {
	num, err := phonenumbers.Parse(s, strings.ToUpper(region))
	if err != nil || !phonenumbers.IsValidNumber(num) {
		return "", false
	}
	return phonenumbers.Format(num, phonenumbers.E164), true
}

// checkPhoneFast fails when phoneFast takes s and disagrees with the slow
// path read in any of regions; it reports whether phoneFast took s.
func checkPhoneFast(t testing.TB, s string, regions ...string) bool {
	got, valid, ok := phoneFast(s)
	if !ok {
		return false
	}
	for _, region := range regions {
		want, wantValid := phoneSlow(s, region)
		if valid != wantValid || got != want {
			t.Fatalf("phoneFast(%q) = %q valid=%v; Parse in %s: %q valid=%v", s, got, valid, region, want, wantValid)
		}
	}
	return true
}

var phoneRegions = []string{"jp", "th", "tw", "id", "us", "gb", "it", "ar", "br", "zz"}

// The fast path gives the slow path's answer on: every example number of
// every region and type (E.164, the form an import carries), the same with
// the region's national prefix written after the calling code, short and
// long variants, and 50,000 random "+digits" strings. Control: it takes
// most of the E.164 examples (else it would prove nothing) and none of the
// forms it must leave to Parse.
func TestPhoneFastMatchesParse(t *testing.T) {
	taken, examples := 0, 0
	types := []phonenumbers.PhoneNumberType{phonenumbers.FIXED_LINE, phonenumbers.MOBILE, phonenumbers.TOLL_FREE,
		phonenumbers.PREMIUM_RATE, phonenumbers.SHARED_COST, phonenumbers.VOIP, phonenumbers.PERSONAL_NUMBER,
		phonenumbers.PAGER, phonenumbers.UAN, phonenumbers.VOICEMAIL}
	for region := range phonenumbers.GetSupportedRegions() {
		for _, typ := range types {
			num := phonenumbers.GetExampleNumberForType(region, typ)
			if num == nil {
				continue
			}
			e164 := phonenumbers.Format(num, phonenumbers.E164)
			examples++
			if checkPhoneFast(t, e164, phoneRegions...) {
				taken++
			}
			cc := strconv.Itoa(int(num.GetCountryCode()))
			nsn := phonenumbers.GetNationalSignificantNumber(num)
			for _, v := range []string{
				"+" + cc + phonenumbers.GetNddPrefixForRegion(region, true) + nsn, // national prefix kept
				"+" + cc + "0" + nsn, "+" + cc + nsn[:len(nsn)-1], "+" + cc + nsn + "1", "+" + cc + nsn + "12",
			} {
				checkPhoneFast(t, v, phoneRegions...)
			}
		}
	}
	for cc := range phonenumbers.GetSupportedGlobalNetworkCallingCodes() {
		if num := phonenumbers.GetExampleNumberForNonGeoEntity(cc); num != nil {
			examples++
			if checkPhoneFast(t, phonenumbers.Format(num, phonenumbers.E164), phoneRegions...) {
				taken++
			}
		}
	}
	if taken < examples*8/10 {
		t.Fatalf("the fast path took %d of %d E.164 examples: it would prove little", taken, examples)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 50_000 {
		b := []byte{'+'}
		for range 4 + r.IntN(17) {
			b = append(b, byte('0'+r.IntN(10)))
		}
		checkPhoneFast(t, string(b), "jp", "us")
	}
	// Left to Parse: not "+digits", a national prefix after the code, a
	// leading zero, too short.
	for _, s := range []string{"09012345678", "+81 90 1234 5678", "+81-90-1234-5678", "+8109012345678", "+819012345678;ext=1",
		"+81９０12345678", "+0123456", "+1", "+81", "+44020 7946 0958", "+390612345678"} {
		if _, _, ok := phoneFast(s); ok {
			t.Errorf("phoneFast took %q, which Parse must read", s)
		}
	}
	if e, valid, ok := phoneFast("+819012345678"); !ok || !valid || e != "+819012345678" {
		t.Errorf("phoneFast(+819012345678) = %q %v %v", e, valid, ok)
	}
}

// FuzzPhoneFastMatchesParse: on any input the fast path takes, its answer
// is the slow path's.
func FuzzPhoneFastMatchesParse(f *testing.F) {
	for _, s := range []string{"+819012345678", "+66812345678", "+886912345678", "+6281234567890", "+12015550123", "+8109012345678", "+999123"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkPhoneFast(t, s, "jp", "th", "us")
	})
}

// A phone number of each region, E.164 as an import carries it:
// impl=parse is phonenumbers.Parse + IsValidNumber + Format (the path
// before), impl=fast is normalizeString now.
func BenchmarkNormalizePhone(b *testing.B) {
	phones := []string{"+817091671400", "+66865176644", "+886912345678", "+6281234567890"}
	f := phoneField()
	for _, impl := range []string{"parse", "fast"} {
		b.Run("impl="+impl, func(b *testing.B) {
			b.ReportAllocs()
			defer benchcpu.PerOp(b)()
			for b.Loop() {
				for _, p := range phones {
					if impl == "parse" {
						if _, ok := phoneSlow(p, "jp"); !ok {
							b.Fatal(p)
						}
					} else if _, err := normalizeString(f, p, "jp"); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
