package sdktests

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// What examples/go prints against the service, as its README promises.
var exampleOutput = []string{
	"model: sim/echo (aliases echo",
	"model: sim/lorem (aliases lorem",
	`generate: "Hello from Go!" (model sim/echo`,
	`stream: [started sim/echo on sim] "Stream " "these " "words" [completed FINISH_REASON_STOP`,
	"rate limited: ResourceExhausted, reason PROVIDER_RATE_LIMITED, retry after 1.5s",
	`retried: "Worth the wait" after 2 attempt(s)`,
}

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
	checkExampleOutput(t, out)
}

// The example as a new consumer would build it: a module of its own on the oldest Go that gen/go's
// go line allows (GOTOOLCHAIN fetches it through the module proxy), which `go get`s the SDK at the
// version examples/go requires and so runs on the SDK's minimum requirements (grpc, connect,
// protobuf), not the newer ones examples/go pins.
func TestGoExampleRunsOnOldestGoAndMinimumRequirements(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	const sdk = "github.com/llm-service/llm-service/gen/go"
	floor, err := goModLine(filepath.Join(root, "gen", "go", "go.mod"), "go")
	if err != nil {
		t.Fatal(err)
	}
	version, err := goModLine(filepath.Join(root, "examples", "go", "go.mod"), sdk)
	if err != nil {
		t.Fatal(err)
	}
	main, err := os.ReadFile(filepath.Join(root, "examples", "go", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), main, 0o644); err != nil {
		t.Fatal(err)
	}
	// The example uses the grpc-go client; this file has the connect-go one compiled too.
	connectUse := "package main\n\nimport \"" + sdk + "/llm/v1/llmv1connect\"\n\nvar _ = llmv1connect.NewLlmServiceClient\n"
	if err := os.WriteFile(filepath.Join(dir, "connect.go"), []byte(connectUse), 0o644); err != nil {
		t.Fatal(err)
	}
	// Compiling grpc and its dependencies with another toolchain takes minutes on a busy machine.
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	env := append(os.Environ(), "GOTOOLCHAIN=go"+floor)
	// run returns what the command wrote to stdout ("go: downloading" lines go to stderr).
	run := func(args ...string) []byte {
		t.Helper()
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = dir
		cmd.Env = append(env, "LLM_SERVICE_ADDR="+svc.addr, "LLM_API_KEY="+svc.key)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("go %s: %v\n%s%s", strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
		}
		return stdout.Bytes()
	}
	if got := strings.TrimSpace(string(run("env", "GOVERSION"))); got != "go"+floor {
		t.Fatalf("the toolchain is %s, not go%s", got, floor)
	}
	run("mod", "init", "example.com/consumer")
	run("get", sdk+"@"+version)
	run("mod", "tidy")
	for _, mod := range []string{"google.golang.org/grpc", "connectrpc.com/connect", "google.golang.org/protobuf"} {
		got := strings.TrimSpace(string(run("list", "-m", "-f", "{{.Version}}", mod)))
		want, err := goModLine(filepath.Join(root, "gen", "go", "go.mod"), mod)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s is %s in the new module, not the SDK's minimum %s", mod, got, want)
		}
	}
	checkExampleOutput(t, run("run", "."))
}

func checkExampleOutput(t *testing.T, out []byte) {
	t.Helper()
	for _, want := range exampleOutput {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// goModLine reads one go.mod directive: the "go" line's version, or the version a require line
// (in a block or not) gives the named module.
func goModLine(path, name string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) > 0 && fields[0] == "require" {
			fields = fields[1:]
		}
		if len(fields) >= 2 && fields[0] == name {
			return fields[1], nil
		}
	}
	if err := scanner.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s has no %q line", path, name)
}
