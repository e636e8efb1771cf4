package sdktests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// examples/go runs against the service and prints what its README promises. It takes the SDK by
// version from the module proxy that scripts/sdk-test.sh puts in GOPROXY (scripts/go-sdk-proxy.sh).
func TestGoExampleRuns(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", ".")
	cmd.Dir = filepath.Join(root, "examples", "go")
	cmd.Env = append(os.Environ(), "LLM_SERVICE_ADDR="+svc.addr, "LLM_API_KEY="+svc.key)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run examples/go: %v\n%s", err, out)
	}
	for _, want := range []string{
		"model: sim/echo (aliases echo",
		"model: sim/lorem (aliases lorem",
		`generate: "Hello from Go!" (model sim/echo`,
		`stream: [started sim/echo on sim] "Stream " "these " "words" [completed FINISH_REASON_STOP`,
		"rate limited: ResourceExhausted, reason PROVIDER_RATE_LIMITED, retry after 1.5s",
		`retried: "Worth the wait" after 2 attempt(s)`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
