package contract

import (
	"errors"
	"math"
	"testing"
)

func TestRateLimitConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   RateLimitConfig
		field string // "" when valid
	}{
		{"smallest", RateLimitConfig{Capacity: 1, RefillPerSecond: MinRefillPerSecond}, ""},
		{"largest", RateLimitConfig{Capacity: MaxCapacity, RefillPerSecond: MaxRefillPerSecond}, ""},
		{"typical", RateLimitConfig{Capacity: 100, RefillPerSecond: 10}, ""},
		{"fraction", RateLimitConfig{Capacity: 3, RefillPerSecond: 1.0 / 3}, ""},
		{"zero", RateLimitConfig{}, "capacity"},
		{"capacity 0", RateLimitConfig{Capacity: 0, RefillPerSecond: 1}, "capacity"},
		{"capacity over", RateLimitConfig{Capacity: MaxCapacity + 1, RefillPerSecond: 1}, "capacity"},
		{"rate 0", RateLimitConfig{Capacity: 1}, "refill_per_second"},
		{"rate negative", RateLimitConfig{Capacity: 1, RefillPerSecond: -0.5}, "refill_per_second"},
		{"rate too small", RateLimitConfig{Capacity: 1, RefillPerSecond: 0.000999}, "refill_per_second"},
		{"rate over", RateLimitConfig{Capacity: 1, RefillPerSecond: math.Nextafter(MaxRefillPerSecond, math.Inf(1))}, "refill_per_second"},
		{"rate NaN", RateLimitConfig{Capacity: 1, RefillPerSecond: math.NaN()}, "refill_per_second"},
		{"rate +Inf", RateLimitConfig{Capacity: 1, RefillPerSecond: math.Inf(1)}, "refill_per_second"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if tt.field == "" {
			if err != nil {
				t.Errorf("Validate(%s %+v) = %v, want nil", tt.name, tt.cfg, err)
			}
			continue
		}
		wantField(t, "Validate("+tt.name+")", err, tt.field)
	}
}

func TestValidateName(t *testing.T) {
	for _, name := range []string{"a", "payment-service", "A.b_c-9", "x"} {
		if err := ValidateName("name", name); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", "-a", ".a", "a b", "a{b}", "a:b", "é", string(make([]byte, 129))} {
		wantField(t, "ValidateName("+name+")", ValidateName("name", name), "name")
	}
}

// wantField fails unless err is a *FieldError naming field.
func wantField(t *testing.T, call string, err error, field string) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != field {
		t.Errorf("%s = %v, want a FieldError on %s", call, err, field)
	}
}
