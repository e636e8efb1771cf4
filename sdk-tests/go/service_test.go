package sdktests

// The service under test: TestMain starts the real service (`node --import tsx src/main.ts` from
// the repository root) on a free loopback port with the built-in sim catalogue, reads its address
// from the "listening" log line and the development key it prints on first start, runs the tests
// and stops it with SIGTERM (which flushes the usage ledger).
//
// Its database: with DATABASE_URL set (CI), a fresh Postgres database created for this run and
// dropped after it, so the tests can read ledger rows (psql); otherwise the embedded PGlite in a
// temporary directory, and the ledger checks that need SQL are skipped (failed under CI=true).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// svc is the running service, set by TestMain.
var svc *service

type service struct {
	addr  string // host:port
	key   string // the development key (tenant "default", admin)
	dbURL string // the service's Postgres database, "" with PGlite

	cmd        *exec.Cmd
	exited     chan struct{}
	output     *tail
	dataDir    string
	adminDBURL string
	dbName     string
}

func TestMain(m *testing.M) {
	s, err := startService()
	if err != nil {
		fmt.Fprintf(os.Stderr, "sdk-tests: could not start the service: %v\n", err)
		os.Exit(1)
	}
	svc = s
	code := m.Run()
	if err := s.stop(); err != nil {
		fmt.Fprintf(os.Stderr, "sdk-tests: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func repoRoot() (string, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, "src", "main.ts")); err != nil {
		return "", fmt.Errorf("%s is not the repository root: %w", root, err)
	}
	return root, nil
}

var keyLine = regexp.MustCompile(`export LLM_API_KEY=(\S+)`)

// startService starts a service process; extraEnv (KEY=value) adds to the fixed environment.
func startService(extraEnv ...string) (*service, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	node := filepath.Join(root, "node_modules", ".bin", "node")
	if _, err := os.Stat(node); err != nil {
		return nil, fmt.Errorf("%s is missing: run `npm ci` in the repository root first", node)
	}

	s := &service{exited: make(chan struct{}), output: &tail{max: 200}}
	// Exactly these variables, so a developer's own settings (LLM_CONFIG, REDIS_URL, ...) stay out.
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"HOST=127.0.0.1",
		"PORT=0",
		"LEDGER_FLUSH_MS=20",
		"LOG_LEVEL=info",
	}
	env = append(env, extraEnv...)
	// A data directory of its own in every case: with Postgres it still holds the ledger's spool
	// (crash journal, outage spool), which one process at a time may use.
	if s.dataDir, err = os.MkdirTemp("", "llm-sdk-go-"); err != nil {
		return nil, err
	}
	env = append(env, "DATA_DIR="+s.dataDir)
	if admin := os.Getenv("DATABASE_URL"); admin != "" {
		if err := s.createDatabase(admin); err != nil {
			return nil, err
		}
		env = append(env, "DATABASE_URL="+s.dbURL)
	}

	s.cmd = exec.Command(node, "--import", "tsx", "src/main.ts")
	s.cmd.Dir = root
	s.cmd.Env = env
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		s.cleanup()
		return nil, err
	}

	addrFound := make(chan string, 1)
	keyFound := make(chan string, 1)
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		scan := bufio.NewScanner(stdout)
		scan.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
		for scan.Scan() {
			line := scan.Text()
			s.output.add("stdout: " + line)
			var entry struct {
				Message string `json:"message"`
				Address string `json:"address"`
			}
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Message == "listening" {
				select {
				case addrFound <- entry.Address:
				default:
				}
			}
		}
	}()
	go func() {
		defer readers.Done()
		scan := bufio.NewScanner(stderr)
		for scan.Scan() {
			line := scan.Text()
			s.output.add("stderr: " + line)
			if m := keyLine.FindStringSubmatch(line); m != nil {
				select {
				case keyFound <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		readers.Wait() // Wait must not run before the pipes are read to the end.
		_ = s.cmd.Wait()
		close(s.exited)
	}()

	timeout := time.After(90 * time.Second)
	for s.addr == "" || s.key == "" {
		select {
		case s.addr = <-addrFound:
		case s.key = <-keyFound:
		case <-s.exited:
			s.cleanup()
			return nil, fmt.Errorf("the service exited before it was ready:\n%s", s.output)
		case <-timeout:
			_ = s.stop()
			return nil, fmt.Errorf("the service was not ready (address and development key) within 90 s:\n%s", s.output)
		}
	}
	return s, nil
}

// createDatabase makes a fresh database for this run on the server of adminURL.
func (s *service) createDatabase(adminURL string) error {
	u, err := url.Parse(adminURL)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		return err
	}
	s.adminDBURL = adminURL
	s.dbName = "llm_sdk_go_" + hex.EncodeToString(suffix)
	if _, err := psql(adminURL, "create database "+s.dbName); err != nil {
		return err
	}
	u.Path = "/" + s.dbName
	s.dbURL = u.String()
	return nil
}

// stop sends SIGTERM, waits for the exit (the ledger is flushed by then) and removes the database.
func (s *service) stop() error {
	var err error
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
			if code := s.cmd.ProcessState.ExitCode(); code != 0 {
				err = fmt.Errorf("the service exited with %d after SIGTERM:\n%s", code, s.output)
			}
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
			err = fmt.Errorf("the service did not exit within 20 s of SIGTERM:\n%s", s.output)
		}
	}
	s.cleanup()
	return err
}

func (s *service) cleanup() {
	if s.dataDir != "" {
		_ = os.RemoveAll(s.dataDir)
	}
	if s.dbName != "" {
		_, _ = psql(s.adminDBURL, "drop database if exists "+s.dbName+" with (force)")
	}
}

// psql runs one SQL command and returns its unaligned, tuples-only output.
func psql(dbURL, sql string) (string, error) {
	cmd := exec.Command("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", dbURL, "-c", sql)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("psql %q: %w: %s", sql, err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f-]{36}$`)

// ledgerStatus waits for the ledger row of a request and returns its status (ok, failed,
// cancelled). With PGlite (no DATABASE_URL) no second process may open the database, so it
// returns false and the caller relies on GetUsage alone; under CI=true that fails the test instead,
// so CI cannot lose the check silently.
func ledgerStatus(t *testing.T, requestID string) (string, bool) {
	t.Helper()
	if svc.dbURL == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but DATABASE_URL is unset: the ledger row cannot be read from the embedded database")
		}
		t.Log("ledger row not checked: set DATABASE_URL (Postgres) to read it")
		return "", false
	}
	if !uuidPattern.MatchString(requestID) {
		t.Fatalf("request id %q is not a UUID", requestID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		status, err := psql(svc.dbURL, "select status from generations where request_id = '"+requestID+"'")
		if err != nil {
			t.Fatal(err)
		}
		if status != "" {
			return status, true
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no ledger row for request %s within 10 s", requestID)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tail keeps the service's last output lines for failure messages.
type tail struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
