package store

import (
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	tests := []struct {
		raw, want string
	}{
		{"redis://localhost:6379/0", "redis://localhost:6379/0"},
		{"redis://app:s3cret@localhost:6379/0", "redis://app:xxxxx@localhost:6379/0"},
		{"redis+sentinel://:s3cret@s1:26379,s2:26379/0?master_name=main&sentinel_password=s3cret",
			"redis+sentinel://:xxxxx@s1:26379,s2:26379/0?master_name=main&sentinel_password=xxxxx"},
		{"rediss://h:6380?password=s3cret&dial_timeout=1s", "rediss://h:6380?password=xxxxx&dial_timeout=1s"},
		{"redis://h?Sentinel_Password=s3cret", "redis://h?Sentinel_Password=xxxxx"},
	}
	for _, tt := range tests {
		got := RedactURL(tt.raw)
		if got != tt.want || strings.Contains(got, "s3cret") {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}
