package store

import (
	"errors"
	"strconv"
	"strings"
)

// Precondition is a condition on an object's config version that a write
// checks in the same script run that writes, so no other write can come
// between the check and the write. The zero Precondition always holds.
//
// A script gets it as one argument (see Arg) and tests it with the Lua
// function precondition_holds that the object's put script defines.
type Precondition struct {
	// MustNotExist holds only when the object does not exist
	// (If-None-Match: *).
	MustNotExist bool
	// MustExist holds when the object exists, at any version (If-Match: *).
	MustExist bool
	// Versions, when Match is set, holds only when the object exists at
	// one of these versions (If-Match: "3", "4"). An empty list with Match
	// set never holds.
	Match    bool
	Versions []int64
}

// Arg is the precondition as a script argument: "" (none), "absent",
// "present", or the versions as ",3,4," (never holds when empty: ",").
func (p Precondition) Arg() string {
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

// ErrPreconditionFailed is matched by a conditional write's error when its
// Precondition did not hold; nothing was written.
var ErrPreconditionFailed = errors.New("precondition failed")

// VersionConflict is the error of a write whose Precondition did not hold.
// It matches ErrPreconditionFailed.
type VersionConflict struct {
	// Exists says whether the object exists; Current is its config
	// version when it does.
	Exists  bool
	Current int64
}

func (e *VersionConflict) Error() string {
	if !e.Exists {
		return "precondition failed: the object does not exist"
	}
	return "precondition failed: the object is at config version " + strconv.FormatInt(e.Current, 10)
}

// Is makes errors.Is(err, ErrPreconditionFailed) true.
func (e *VersionConflict) Is(target error) bool { return target == ErrPreconditionFailed }
