package ratelimit

import "testing"

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
		if got := milliRate(Config{RefillPerSecond: tt.rate}); got != tt.want {
			t.Errorf("milliRate(%v) = %d, want %d", tt.rate, got, tt.want)
		}
	}
}
