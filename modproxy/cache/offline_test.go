package cache

import "testing"

func TestLatestOf(t *testing.T) {
	for _, tc := range []struct {
		vs   []string
		want string
	}{
		{nil, ""},
		{[]string{"v1.0.0", "v1.2.0-rc.1", "v1.1.0", "v0.0.0-20250101000000-abcdefabcdef"}, "v1.1.0"},
		{[]string{"v1.2.0-rc.1", "v1.2.0-beta.2", "v0.0.0-20250101000000-abcdefabcdef"}, "v1.2.0-rc.1"},
		// By time, not by semver order: v1.0.1-0.<older> sorts above v0.0.0-<newer>.
		{[]string{"v1.0.1-0.20230101000000-abcdefabcdef", "v0.0.0-20250101000000-abcdefabcdef"}, "v0.0.0-20250101000000-abcdefabcdef"},
		{[]string{"v2.0.0+incompatible", "v1.9.0"}, "v2.0.0+incompatible"},
	} {
		if got := latestOf(tc.vs); got != tc.want {
			t.Errorf("latestOf(%v) = %q, want %q", tc.vs, got, tc.want)
		}
	}
}
