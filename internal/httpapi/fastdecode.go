package httpapi

import "github.com/breakwater-dev/breakwater/internal/contract"

// Fast paths for the bodies of take and outcomes, the hot path: a small
// scanner that accepts only plain bodies (known fields, each once; strings
// of printable ASCII without escapes; integers; true and false) and fills
// in what encoding/json would. Anything else, every malformed body among
// it, goes to the strict decoder, which gives the errors. A fuzz test
// holds the two equal on every body the fast path accepts.

type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// lit consumes c after any whitespace.
func (s *scanner) lit(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string of printable ASCII other than '"' and '\\'.
func (s *scanner) str() ([]byte, bool) {
	if !s.lit('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == '"' {
			s.i++
			return s.b[start : s.i-1], true
		}
		if c < 0x20 || c > 0x7e || c == '\\' {
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// int reads a JSON integer that fits an int64: no fraction, no exponent,
// no leading zero.
func (s *scanner) int() (int64, bool) {
	s.ws()
	neg := s.i < len(s.b) && s.b[s.i] == '-'
	if neg {
		s.i++
	}
	start := s.i
	var n int64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		d := int64(s.b[s.i] - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false // out of range (and -2^63 itself): the strict decoder says so
		}
		n = n*10 + d
		s.i++
	}
	digits := s.i - start
	if digits == 0 || (digits > 1 && s.b[start] == '0') {
		return 0, false
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

func (s *scanner) boolean() (bool, bool) {
	s.ws()
	switch {
	case len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "true":
		s.i += 4
		return true, true
	case len(s.b)-s.i >= 5 && string(s.b[s.i:s.i+5]) == "false":
		s.i += 5
		return false, true
	}
	return false, false
}

// object reads a flat object, calling field for each name; field reads the
// value and reports whether it could. Names may not repeat (seen is a
// bitmask that field's index fills).
func (s *scanner) object(field func(name []byte) (bit uint, ok bool)) bool {
	if !s.lit('{') {
		return false
	}
	if s.lit('}') {
		return true
	}
	var seen uint
	for {
		name, ok := s.str()
		if !ok || !s.lit(':') {
			return false
		}
		bit, ok := field(name)
		if !ok || seen&(1<<bit) != 0 {
			return false
		}
		seen |= 1 << bit
		if s.lit('}') {
			return true
		}
		if !s.lit(',') {
			return false
		}
	}
}

// end reports whether only whitespace is left.
func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// fastTake decodes a take's body into req.
func fastTake(body []byte, req *contract.TakeRequest) bool {
	s := scanner{b: body}
	out := *req
	ok := s.object(func(name []byte) (uint, bool) {
		var ok bool
		switch string(name) {
		case "tokens":
			out.Tokens, ok = s.int()
			return 0, ok
		case "key":
			var k []byte
			k, ok = s.str()
			out.Key = string(k)
			return 1, ok
		case "partial":
			out.Partial, ok = s.boolean()
			return 2, ok
		}
		return 0, false
	}) && s.end()
	if ok {
		*req = out
	}
	return ok
}

// fastOutcomes decodes an outcomes report's body into list.
func fastOutcomes(body []byte, list *[]contract.OutcomeEntry) bool {
	s := scanner{b: body}
	var vals []outcomeVals
	found := false
	ok := s.object(func(name []byte) (uint, bool) {
		if string(name) != "outcomes" || !s.lit('[') {
			return 0, false
		}
		found = true
		if s.lit(']') {
			return 0, true
		}
		for {
			var v outcomeVals
			if !s.object(func(name []byte) (uint, bool) {
				var ok bool
				switch string(name) {
				case "success":
					v.success, ok = s.boolean()
					v.has |= 1
					return 0, ok
				case "duration_ms":
					v.duration, ok = s.int()
					return 1, ok
				case "count":
					v.count, ok = s.int()
					v.has |= 2
					return 2, ok
				case "permit":
					v.permit, ok = s.str()
					return 3, ok
				case "generation":
					v.generation, ok = s.int()
					v.has |= 4
					return 4, ok
				case "retries":
					v.retries, ok = s.int()
					return 5, ok
				}
				return 0, false
			}) {
				return 0, false
			}
			vals = append(vals, v)
			if s.lit(']') {
				return 0, true
			}
			if !s.lit(',') {
				return 0, false
			}
		}
	}) && s.end()
	if !ok || !found {
		return false
	}
	out := make([]contract.OutcomeEntry, len(vals))
	for i := range vals {
		v := &vals[i]
		out[i] = contract.OutcomeEntry{DurationMS: v.duration, Permit: string(v.permit), Retries: v.retries}
		if v.has&1 != 0 {
			out[i].Success = &v.success
		}
		if v.has&2 != 0 {
			out[i].Count = &v.count
		}
		if v.has&4 != 0 {
			out[i].Generation = &v.generation
		}
	}
	*list = out
	return true
}

// outcomeVals is one entry as read, before it becomes a contract.OutcomeEntry whose
// pointers point here.
type outcomeVals struct {
	has                                  uint8 // 1 success, 2 count, 4 generation
	success                              bool
	duration, count, generation, retries int64
	permit                               []byte
}
