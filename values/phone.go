package values

import (
	"regexp"
	"slices"
	"strconv"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// The phone fast path. Most imported phone numbers are E.164 already
// ("+819012345678"). For such a string phonenumbers.Parse spends most of
// its time on steps that cannot change it (looking for an extension, a
// phone-context, the international prefix of the region) and on regular
// expressions; what it does that matters is: split off the country calling
// code (the first one to three digits that are a known code), strip a
// national prefix if the calling code's metadata says one is there, and
// record leading zeros. phoneFast does the split itself and takes only the
// inputs where the other steps are no-ops (no national prefix at the start
// of the national number, no leading zero); any other input goes to Parse.
// Validity is phonenumbers.IsValidNumber's rule over the same metadata
// (the region's number types, matched whole, with their possible lengths;
// IsValidNumber itself for a code shared by several regions), and the
// result the input itself, which is phonenumbers.Format(E164) of it. TestPhoneFastMatchesParse and
// FuzzPhoneFastMatchesParse hold it equal to the slow path.

// phoneCode is what the fast path knows of a country calling code.
type phoneCode struct {
	known bool
	// prefix matches a national prefix (for parsing) at the start of a
	// national number; nil when the code's metadata has none.
	prefix *regexp.Regexp
	// valid, for a code of one region (or a non-geographic one), says
	// what phonenumbers.IsValidNumber says; nil: ask IsValidNumber.
	valid *phoneTypes
}

// phoneDesc is one number type of a region's metadata: its possible
// national lengths (none: any) and its pattern, matched whole.
type phoneDesc struct {
	lengths []int32
	re      *regexp.Regexp // nil: matches no number (an empty pattern)
}

func newPhoneDesc(d *phonenumbers.PhoneNumberDesc) (phoneDesc, bool) {
	out := phoneDesc{lengths: d.GetPossibleLength()}
	if p := d.GetNationalNumberPattern(); p != "" {
		re, err := regexp.Compile("^(?:" + p + ")$")
		if err != nil {
			return out, false
		}
		out.re = re
	}
	return out, true
}

// matches is phonenumbers' isNumberMatchingDesc: a possible length (if the
// type lists lengths) and the whole pattern.
func (d phoneDesc) matches(nsn string) bool {
	if d.re == nil {
		return false
	}
	if len(d.lengths) > 0 && !slices.Contains(d.lengths, int32(len(nsn))) {
		return false
	}
	return d.re.MatchString(nsn)
}

// phoneTypes is a region's number types as phonenumbers' getNumberTypeHelper
// reads them. A number is valid when its type is not UNKNOWN: it matches
// the general description and one type (mobile counts only when its pattern
// is not the fixed line's, which then decides); which one does not matter,
// so the common ones are tried first.
type phoneTypes struct {
	general, mobile, fixed phoneDesc
	same                   bool // SameMobileAndFixedLinePattern
	others                 []phoneDesc
}

func newPhoneTypes(md *phonenumbers.PhoneMetadata) (*phoneTypes, bool) {
	t := &phoneTypes{same: md.GetSameMobileAndFixedLinePattern()}
	var ok bool
	for _, x := range []struct {
		dst *phoneDesc
		src *phonenumbers.PhoneNumberDesc
	}{{&t.general, md.GetGeneralDesc()}, {&t.mobile, md.GetMobile()}, {&t.fixed, md.GetFixedLine()}} {
		if *x.dst, ok = newPhoneDesc(x.src); !ok {
			return nil, false
		}
	}
	for _, d := range []*phonenumbers.PhoneNumberDesc{md.GetPremiumRate(), md.GetTollFree(), md.GetSharedCost(),
		md.GetVoip(), md.GetPersonalNumber(), md.GetPager(), md.GetUan(), md.GetVoicemail()} {
		pd, ok := newPhoneDesc(d)
		if !ok {
			return nil, false
		}
		t.others = append(t.others, pd)
	}
	return t, true
}

func (t *phoneTypes) validNumber(nsn string) bool {
	if !t.general.matches(nsn) {
		return false
	}
	if !t.same && t.mobile.matches(nsn) || t.fixed.matches(nsn) {
		return true
	}
	for _, d := range t.others {
		if d.matches(nsn) {
			return true
		}
	}
	return false
}

// phoneCodes is built once from phonenumbers' own metadata (read only
// afterwards): index = calling code.
var phoneCodes = sync.OnceValue(func() []phoneCode {
	codes := make([]phoneCode, 1000)
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		return codes // no code known: every number takes Parse
	}
	for cc := 1; cc < len(codes); cc++ {
		if len(phonenumbers.GetRegionCodesForCountryCode(cc)) == 0 {
			continue
		}
		// Parse reads the national prefix from the metadata of the code's
		// main region, or of the code itself for a non-geographic one.
		main := phonenumbers.GetRegionCodeForCountryCode(cc)
		for _, md := range coll.GetMetadata() {
			if md.GetId() != main || (main == "001" && int(md.GetCountryCode()) != cc) {
				continue
			}
			c := phoneCode{known: true}
			if p := md.GetNationalPrefixForParsing(); p != "" {
				re, err := regexp.Compile("^(?:" + p + ")")
				if err != nil {
					c.known = false // not one we can test: Parse decides
				}
				c.prefix = re
			}
			// IsValidNumber reads this metadata when the code has one
			// region (else the region is found by trying each).
			if len(phonenumbers.GetRegionCodesForCountryCode(cc)) == 1 && int(md.GetCountryCode()) == cc {
				if t, ok := newPhoneTypes(md); ok {
					c.valid = t
				}
			}
			codes[cc] = c
			break
		}
	}
	return codes
})

// phoneFast returns, for a phone number s written as "+" and ASCII digits
// whose national part needs no rewriting, its E.164 form and whether it is
// valid (ok); ok is false for any other s, which Parse must read.
func phoneFast(s string) (e164 string, valid, ok bool) {
	if len(s) < 5 || len(s) > 1+3+phonenumbers.MAX_LENGTH_FOR_NSN || s[0] != '+' || s[1] == '0' {
		return "", false, false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", false, false
		}
	}
	codes := phoneCodes()
	digits := s[1:]
	for n := 1; n <= 3; n++ {
		cc, _ := strconv.Atoi(digits[:n])
		if len(phonenumbers.GetRegionCodesForCountryCode(cc)) == 0 {
			continue
		}
		// The first known code is the one Parse takes.
		c := codes[cc]
		nsn := digits[n:]
		if !c.known || len(nsn) < phonenumbers.MIN_LENGTH_FOR_NSN || len(nsn) > phonenumbers.MAX_LENGTH_FOR_NSN ||
			nsn[0] == '0' || (c.prefix != nil && c.prefix.MatchString(nsn)) {
			return "", false, false
		}
		v, err := strconv.ParseUint(nsn, 10, 64)
		if err != nil {
			return "", false, false
		}
		code := int32(cc)
		num := &phonenumbers.PhoneNumber{CountryCode: &code, NationalNumber: &v}
		if c.valid != nil {
			valid = c.valid.validNumber(nsn)
		} else {
			valid = phonenumbers.IsValidNumber(num)
		}
		if !valid {
			return "", false, true
		}
		// E.164 is "+", the code and the national significant number,
		// which (no leading zero) is nsn.
		return s, true, true
	}
	return "", false, false
}
