package strategytest

import "testing"

func TestOptions(t *testing.T) {
	if _, err := newConfig([]Option{WithSeeded(), nil}); err == nil || err.Error() != "strategytest: nil option" {
		t.Errorf("a nil option: got %v, want strategytest: nil option", err)
	}
	cfg, err := newConfig([]Option{WithSeeded()})
	if err != nil || !cfg.seeded {
		t.Errorf("WithSeeded: got %+v, %v", cfg, err)
	}
}
