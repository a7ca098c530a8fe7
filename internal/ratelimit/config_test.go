package ratelimit

import (
	"math"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string // "" when valid
	}{
		{"smallest", Config{Capacity: 1, RefillPerSecond: MinRefillPerSecond}, ""},
		{"largest", Config{Capacity: MaxCapacity, RefillPerSecond: MaxRefillPerSecond}, ""},
		{"typical", Config{Capacity: 100, RefillPerSecond: 10}, ""},
		{"fraction", Config{Capacity: 3, RefillPerSecond: 1.0 / 3}, ""},
		{"zero", Config{}, "capacity"},
		{"capacity 0", Config{Capacity: 0, RefillPerSecond: 1}, "capacity"},
		{"capacity over", Config{Capacity: MaxCapacity + 1, RefillPerSecond: 1}, "capacity"},
		{"rate 0", Config{Capacity: 1}, "refill_per_second"},
		{"rate negative", Config{Capacity: 1, RefillPerSecond: -0.5}, "refill_per_second"},
		{"rate too small", Config{Capacity: 1, RefillPerSecond: 0.000999}, "refill_per_second"},
		{"rate over", Config{Capacity: 1, RefillPerSecond: math.Nextafter(MaxRefillPerSecond, math.Inf(1))}, "refill_per_second"},
		{"rate NaN", Config{Capacity: 1, RefillPerSecond: math.NaN()}, "refill_per_second"},
		{"rate +Inf", Config{Capacity: 1, RefillPerSecond: math.Inf(1)}, "refill_per_second"},
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

func TestMilliRate(t *testing.T) {
	tests := []struct {
		rate float64
		want int64
	}{
		{MinRefillPerSecond, 1},
		{MaxRefillPerSecond, 1e12},
		{0.3, 300},
		{1.0 / 3, 333},
		{100, 100_000},
	}
	for _, tt := range tests {
		if got := (Config{RefillPerSecond: tt.rate}).milliRate(); got != tt.want {
			t.Errorf("milliRate(%v) = %d, want %d", tt.rate, got, tt.want)
		}
	}
}

func TestValidateName(t *testing.T) {
	for _, name := range []string{"a", "payment-service", "A.b_c-9", "x"} {
		if err := ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", "-a", ".a", "a b", "a{b}", "a:b", "é", string(make([]byte, 129))} {
		wantField(t, "ValidateName("+name+")", ValidateName(name), "name")
	}
}
