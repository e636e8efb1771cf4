package sdktests

// SIGTERM drain seen by grpc-go: streams in flight when the signal comes end with their
// completed event and a clean end of stream (OK trailers), not "error reading from server: EOF
// ... received prior goaway". The service of this test is its own, since the test stops it.

import (
	"context"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	llmv1 "github.com/llm-service/llm-service/gen/go/llm/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

func TestGRPCStreamsInFlightAtSIGTERMEndCleanly(t *testing.T) {
	s, err := startService("SHUTDOWN_GRACE_MS=10000")
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = s.cmd.Process.Kill()
			<-s.exited
			s.cleanup()
		}
	})

	// One connection, as grpcurl and most grpc-go clients have: several streams share it.
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := llmv1.NewLlmServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+s.key)

	const streams = 4
	type outcome struct {
		kinds []string
		err   error
	}
	results := make(chan outcome, streams)
	firstDelta := make(chan struct{}, streams)
	for i := 0; i < streams; i++ {
		go func() {
			var o outcome
			defer func() { results <- o }()
			stream, err := client.StreamGenerate(ctx, &llmv1.StreamGenerateRequest{
				Model:    "sim/lorem",
				Messages: user("drain me gently"),
				Metadata: map[string]string{"sim-inter-token-ms": "30"},
			})
			if err != nil {
				o.err = err
				firstDelta <- struct{}{}
				return
			}
			signalled := false
			for {
				event, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					return
				}
				if err != nil {
					o.err = err
					if !signalled {
						firstDelta <- struct{}{}
					}
					return
				}
				switch event.GetEvent().(type) {
				case *llmv1.StreamGenerateResponse_Started:
					o.kinds = append(o.kinds, "started")
				case *llmv1.StreamGenerateResponse_Delta:
					if !signalled {
						signalled = true
						firstDelta <- struct{}{}
					}
					if last := len(o.kinds) - 1; last < 0 || o.kinds[last] != "delta" {
						o.kinds = append(o.kinds, "delta")
					}
				case *llmv1.StreamGenerateResponse_Completed:
					o.kinds = append(o.kinds, "completed")
				}
			}
		}()
	}
	for i := 0; i < streams; i++ {
		select {
		case <-firstDelta:
		case <-time.After(10 * time.Second):
			t.Fatal("the streams did not start within 10 s")
		}
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()

	for i := 0; i < streams; i++ {
		select {
		case o := <-results:
			if o.err != nil {
				t.Errorf("stream ended with %v after %s, want a clean end", o.err, strings.Join(o.kinds, " "))
			} else if got := strings.Join(o.kinds, " "); got != "started delta completed" {
				t.Errorf("stream events = %s, want started delta… completed", got)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("a stream did not end within 15 s of SIGTERM")
		}
	}
	select {
	case <-s.exited:
		stopped = true
		t.Logf("the service exited %v after SIGTERM", time.Since(signalled).Round(time.Millisecond))
		s.cleanup()
		if code := s.cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("the service exited with %d after SIGTERM:\n%s", code, s.output)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the service did not exit within 15 s of SIGTERM:\n%s", s.output)
	}
	if strings.Contains(s.output.String(), "grace period over") {
		t.Errorf("the drain waited out its grace period:\n%s", s.output)
	}
}
