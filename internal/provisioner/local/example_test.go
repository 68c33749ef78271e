package local

import (
	"path/filepath"
	"testing"

	scalerconfig "github.com/runnerscaler/runnerscaler/internal/config"
	"github.com/runnerscaler/runnerscaler/internal/provisioner"
)

// TestExampleConfigSettings keeps config.example.yaml honest: its local
// provisioner's settings must pass this provisioner's own checks.
func TestExampleConfigSettings(t *testing.T) {
	cfg, err := scalerconfig.Load(filepath.Join("..", "..", "..", "config.example.yaml"), map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for name, p := range cfg.Provisioners {
		if p.Type != "local" {
			continue
		}
		if _, err := parseSettings(p.Settings, provisioner.Env{Name: name, StateDir: t.TempDir(), DaemonID: "example"}); err != nil {
			t.Errorf("provisioners.%s: %v", name, err)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("the example config has no local provisioner to check")
	}
}
