package storetest

import "testing"

func TestOptions(t *testing.T) {
	for _, tt := range []struct {
		name string
		opt  Option
		want string
	}{
		{"too few attempts", WithHammer(10), "storetest: WithHammer: 10 attempts, want at least 64"},
		{"negative attempts", WithHammer(-1), "storetest: WithHammer: -1 attempts, want at least 64"},
		{"nil option", nil, "storetest: nil option"},
		{"negative concurrency", WithConcurrency(-1), "storetest: WithConcurrency: -1 cases at once, want at least 1"},
	} {
		if _, err := newConfig([]Option{tt.opt}); err == nil || err.Error() != tt.want {
			t.Errorf("%s: got %v, want %s", tt.name, err, tt.want)
		}
	}
	if cfg, err := newConfig([]Option{WithHammer(0)}); err != nil || cfg.hammer != DefaultHammer {
		t.Errorf("WithHammer(0): got %+v, %v; want the default", cfg, err)
	}
	if cfg, err := newConfig([]Option{WithHammer(64)}); err != nil || cfg.hammer != 64 {
		t.Errorf("WithHammer(64): got %+v, %v", cfg, err)
	}
	if cfg, err := newConfig(nil); err != nil || cfg.concurrency != 1 {
		t.Errorf("no options: got %+v, %v; want one case at a time", cfg, err)
	}
	if cfg, err := newConfig([]Option{WithConcurrency(0)}); err != nil || cfg.concurrency != 1 {
		t.Errorf("WithConcurrency(0): got %+v, %v; want one case at a time", cfg, err)
	}
	if cfg, err := newConfig([]Option{WithConcurrency(4)}); err != nil || cfg.concurrency != 4 {
		t.Errorf("WithConcurrency(4): got %+v, %v", cfg, err)
	}
}
