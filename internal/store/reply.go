package store

import "strconv"

// ReplyInt reads an integer from a script's reply element: a Lua number
// arrives as int64, a number kept as a hash field as a string. Anything
// else, or a string that is not a number, is 0.
func ReplyInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

// ReplyString reads a string from a script's reply element; an integer is
// written in decimal, anything else is "".
func ReplyString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return ""
}
