package secret

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	s := String("ghs_supersecret")
	type holder struct {
		Token String
		List  []String
	}
	h := holder{Token: s, List: []String{s}}
	outputs := map[string]string{
		"%v":  fmt.Sprintf("%v", s),
		"%s":  fmt.Sprintf("%s", s),
		"%q":  fmt.Sprintf("%q", s),
		"%x":  fmt.Sprintf("%x", s),
		"%#v": fmt.Sprintf("%#v", s),
		"+v":  fmt.Sprintf("%+v", h),
		"#v":  fmt.Sprintf("%#v", h),
	}
	j, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	outputs["json"] = string(j)
	for name, out := range outputs {
		if strings.Contains(out, "supersecret") {
			t.Errorf("%s leaked the secret: %s", name, out)
		}
		if !strings.Contains(out, Redacted) {
			t.Errorf("%s = %q, want the placeholder", name, out)
		}
	}
	if s.Reveal() != "ghs_supersecret" {
		t.Errorf("Reveal = %q", s.Reveal())
	}
	if String("").String() != "" {
		t.Error("empty secret should print empty so 'not set' stays visible")
	}
}
