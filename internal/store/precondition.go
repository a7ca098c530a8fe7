package store

import (
	"strconv"
	"strings"

	"github.com/breakwater-dev/breakwater/internal/contract"
)

// PreconditionArg is p as one script argument, which the object's put
// script tests with the Lua function precondition_holds: "" (none),
// "absent", "present", or the versions as ",3,4," (never holds when
// empty: ",").
func PreconditionArg(p contract.Precondition) string {
	switch {
	case p.MustNotExist:
		return "absent"
	case p.Match:
		var b strings.Builder
		b.WriteByte(',')
		for _, v := range p.Versions {
			b.WriteString(strconv.FormatInt(v, 10))
			b.WriteByte(',')
		}
		return b.String()
	case p.MustExist:
		return "present"
	}
	return ""
}
