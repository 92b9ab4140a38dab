package sekisho

// DefaultRegions are the residency regions an instance accepts when none
// are configured (serve --regions).
var DefaultRegions = []string{"jp", "th", "tw", "id"}

// ValidRegion reports whether r is a residency region code: two to eight
// lower-case ASCII letters (ISO 3166-1 alpha-2 codes such as jp, th, tw, id).
func ValidRegion(r string) bool {
	if len(r) < 2 || len(r) > 8 {
		return false
	}
	for i := 0; i < len(r); i++ {
		if r[i] < 'a' || r[i] > 'z' {
			return false
		}
	}
	return true
}
