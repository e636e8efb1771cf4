package sdktests

// grpc-go writes grpc-timeout in microseconds for any deadline under 100 s (a 5 s deadline goes out
// as e.g. `4999987u`), so the service sees a deadline with a fraction of a millisecond. That
// fraction once reached the openai and anthropic SDKs, which refuse a timeout that is not a whole
// number of milliseconds, and the call failed with INTERNAL. The built-in sim provider never
// noticed, so this test starts a second service whose catalogue points an openai, an anthropic and
// an ollama deployment (and a sim one) at the project's wire simulator (src/simulator).

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	llmv1 "github.com/llm-service/llm-service/gen/go/llm/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

var simulatorURL = regexp.MustCompile(`upstream simulator listening on (http://\S+)`)

// startSimulator runs `src/simulator/main.ts` on a free loopback port and returns its base URL.
func startSimulator(t *testing.T) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(root, "node_modules", ".bin", "node"), "--import", "tsx", "src/simulator/main.ts", "--port", "0", "--host", "127.0.0.1")
	cmd.Dir = root
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	found := make(chan string, 1)
	go func() {
		scan := bufio.NewScanner(stdout)
		for scan.Scan() {
			if m := simulatorURL.FindStringSubmatch(scan.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	select {
	case url := <-found:
		return url
	case <-exited:
		t.Fatal("the simulator exited before it was listening")
	case <-time.After(60 * time.Second):
		t.Fatal("the simulator was not listening within 60 s")
	}
	return ""
}

func providersCatalogue(simURL string) string {
	model := func(id, provider, baseURL string) string {
		return fmt.Sprintf(`
  - id: %s
    contextWindow: 100000
    maxOutputTokens: 256
    deployments:
      - provider: %s
        model: upstream-%s
        baseUrl: %s
        options: { "header:x-sim-text": "echo" }`, id, provider, id, baseURL)
	}
	return "models:" +
		model("oai", "openai", simURL+"/v1") +
		model("claude", "anthropic", simURL) +
		model("llama", "ollama", simURL) + `
  - id: sim
    contextWindow: 100000
    maxOutputTokens: 256
    deployments:
      - { provider: sim, model: echo }
`
}

func TestGRPCMicrosecondDeadlinesReachEveryProvider(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a second service and the upstream simulator")
	}
	simURL := startSimulator(t)
	dir := t.TempDir()
	catalogue := filepath.Join(dir, "catalogue.yaml")
	if err := os.WriteFile(catalogue, []byte(providersCatalogue(simURL)), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := startService([]string{
		"LLM_CONFIG=" + catalogue,
		"OPENAI_API_KEY=sk-test-openai",
		"ANTHROPIC_API_KEY=sk-test-anthropic",
		"OLLAMA_HOST=" + simURL,
	}...)
	if err != nil {
		t.Fatalf("could not start the service with the providers catalogue: %v", err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Error(err)
		}
	})
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	client := llmv1.NewLlmServiceClient(conn)

	call := func(model string, timeout time.Duration) (*llmv1.GenerateResponse, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+s.key)
		return client.Generate(ctx, &llmv1.GenerateRequest{Model: model, Messages: user("hello upstream world")})
	}

	for _, model := range []string{"oai", "claude", "llama", "sim"} {
		t.Run(model, func(t *testing.T) {
			// Deadlines of a few seconds plus odd microseconds and nanoseconds: sent as `NNNNNNNu`.
			for _, timeout := range []time.Duration{5*time.Second + 1234*time.Nanosecond, 3*time.Second + 333*time.Microsecond + 7} {
				resp, err := call(model, timeout)
				if err != nil {
					st, _ := status.FromError(err)
					t.Fatalf("deadline %v: %s %q, want an answer", timeout, st.Code(), st.Message())
				}
				if resp.GetText() != "hello upstream world" {
					t.Errorf("deadline %v: text = %q", timeout, resp.GetText())
				}
			}
			// Under a millisecond: too short for any attempt, DEADLINE_EXCEEDED (from either side), never INTERNAL.
			for _, timeout := range []time.Duration{999 * time.Microsecond, 999 * time.Nanosecond} {
				_, err := call(model, timeout)
				if code := status.Code(err); code != codes.DeadlineExceeded {
					t.Errorf("deadline %v: code = %s (%v), want DeadlineExceeded", timeout, code, err)
				}
			}
		})
	}
}
