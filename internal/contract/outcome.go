package contract

// NoGeneration is Outcome.Generation when the reporter does not say which
// generation a call was allowed under.
const NoGeneration = -1

// OutcomeEntry is one entry of an outcomes report as it travels. Success
// is required; Count defaults to 1; a missing Generation means the
// reporter does not say. Pointers tell a missing field from a zero one.
// Read turns an entry into an Outcome.
type OutcomeEntry struct {
	Success    *bool  `json:"success"`
	DurationMS int64  `json:"duration_ms"`
	Count      *int64 `json:"count,omitempty"`
	Permit     string `json:"permit,omitempty"`
	Generation *int64 `json:"generation,omitempty"`
	// Retries is how many of the entry's calls were retries (0..count).
	Retries int64 `json:"retries,omitempty"`
}

// Outcome is what happened to one call, or to Count like calls: an
// OutcomeEntry read, defaults filled in.
type Outcome struct {
	Success    bool
	DurationMS int64
	Count      int64
	Permit     string
	// Generation is the generation the call was allowed under, or
	// NoGeneration.
	Generation int64
	// Retries is how many of the Count calls were retries (0..Count):
	// they count against the breaker's retry budget.
	Retries int64
}

// Entry returns o as it travels, leaving out what the defaults say.
func (o Outcome) Entry() OutcomeEntry {
	e := OutcomeEntry{Success: &o.Success, DurationMS: o.DurationMS, Permit: o.Permit, Retries: o.Retries}
	if o.Count != 1 {
		e.Count = &o.Count
	}
	if o.Generation != NoGeneration {
		e.Generation = &o.Generation
	}
	return e
}

// OutcomesRequest is the body of POST /v1/breakers/{name}/outcomes.
type OutcomesRequest struct {
	Outcomes []OutcomeEntry `json:"outcomes"`
}

// ReadOutcomes turns a report's entries into outcomes, defaults filled in.
// A missing field is a *FieldError naming it ("outcomes[3].success"). It
// does not check ranges: ValidateOutcomes does, where the outcomes are
// applied.
func ReadOutcomes(list []OutcomeEntry) ([]Outcome, error) {
	if list == nil {
		return nil, &FieldError{Field: "outcomes", Reason: "required"}
	}
	outs := make([]Outcome, len(list))
	for i, e := range list {
		if e.Success == nil {
			return nil, &FieldError{Field: fieldAt(i, "success"), Reason: "required"}
		}
		outs[i] = Outcome{Success: *e.Success, DurationMS: e.DurationMS, Count: 1, Permit: e.Permit, Generation: NoGeneration, Retries: e.Retries}
		if e.Count != nil {
			outs[i].Count = *e.Count
		}
		if e.Generation != nil {
			if *e.Generation < 0 {
				return nil, &FieldError{Field: fieldAt(i, "generation"), Reason: "must not be negative"}
			}
			outs[i].Generation = *e.Generation
		}
	}
	return outs, nil
}

// ValidateOutcomes checks a report's outcomes before anything is written:
// 1 to MaxOutcomes entries, each of 1 to MaxOutcomeCount calls lasting 0 to
// MaxDurationMS, of which 0 to all were retries, a permit of at most
// MaxPermitLen bytes only on an entry of one call. What a permit looks
// like inside is up to whoever issued it (the control plane, or an
// agent): each checks its own.
func ValidateOutcomes(outs []Outcome) error {
	if len(outs) == 0 || len(outs) > MaxOutcomes {
		return &FieldError{Field: "outcomes", Reason: "must hold 1 to " + itoa(MaxOutcomes) + " entries, got " + itoa(len(outs))}
	}
	for i, o := range outs {
		if err := inRange(fieldAt(i, "duration_ms"), o.DurationMS, 0, MaxDurationMS); err != nil {
			return err
		}
		if err := inRange(fieldAt(i, "count"), o.Count, 1, MaxOutcomeCount); err != nil {
			return err
		}
		if o.Retries < 0 || o.Retries > o.Count {
			return &FieldError{Field: fieldAt(i, "retries"), Reason: "must be between 0 and count (" + itoa(o.Count) + "), got " + itoa(o.Retries)}
		}
		if o.Permit != "" {
			if o.Count != 1 {
				return &FieldError{Field: fieldAt(i, "count"), Reason: "must be 1 with a permit"}
			}
			if len(o.Permit) > MaxPermitLen {
				return &FieldError{Field: fieldAt(i, "permit"), Reason: "is not a permit this server issued"}
			}
		}
		if o.Generation < NoGeneration {
			return &FieldError{Field: fieldAt(i, "generation"), Reason: "must not be negative"}
		}
	}
	return nil
}

func fieldAt(i int, f string) string { return "outcomes[" + itoa(i) + "]." + f }

// BatchRequest is the body of POST /v1/outcomes: every breaker's report
// in one request.
type BatchRequest struct {
	Reports []BatchReport `json:"reports"`
}

// BatchReport is one breaker's report in a batch.
type BatchReport struct {
	Breaker  string         `json:"breaker"`
	Outcomes []OutcomeEntry `json:"outcomes"`
}

// Validate checks the size of a batch: 1 to MaxBatchReports reports.
// Each report is read on its own (Read): a bad one fails alone.
func (b BatchRequest) Validate() error {
	if b.Reports == nil {
		return &FieldError{Field: "reports", Reason: "required"}
	}
	if n := len(b.Reports); n == 0 || n > MaxBatchReports {
		return &FieldError{Field: "reports", Reason: "must hold 1 to " + itoa(MaxBatchReports) + " reports, got " + itoa(n)}
	}
	return nil
}

// Read reads a batch's report: Err, when set, is why it cannot be applied.
func (r BatchReport) Read() Report {
	rep := Report{Breaker: r.Breaker}
	rep.Outcomes, rep.Err = ReadOutcomes(r.Outcomes)
	return rep
}

// Report is one breaker's report of a batch as the control plane applies
// it. Err, when set, is why it cannot be (the report was malformed): it is
// answered as that report's error and nothing of it is applied.
type Report struct {
	Breaker  string
	Outcomes []Outcome
	Err      error
}

// ReportResult answers one report of a batch: its decision, or Err.
type ReportResult struct {
	Decision Decision
	Err      error
	// Replayed says the report was applied by an earlier request with the
	// same idempotency key, and Decision is that request's answer.
	Replayed bool
}

// BatchResult is one entry of the answer to POST /v1/outcomes: the
// report's decision, as outcomes answers it, or its problem, named by its
// breaker.
type BatchResult struct {
	Breaker string `json:"breaker"`
	*Decision
	Error *Problem `json:"error,omitempty"`
}

// BatchAnswer is the answer to POST /v1/outcomes, one result per report,
// in order.
type BatchAnswer struct {
	Results []BatchResult `json:"results"`
}
