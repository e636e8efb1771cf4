package sdktests

// The connect-go client of gen/go (llmv1connect) against the running service, over each protocol
// it speaks: Connect (HTTP/1.1), gRPC (h2c) and gRPC-web (HTTP/1.1).

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	llmv1 "github.com/llm-service/llm-service/gen/go/llm/v1"
	"github.com/llm-service/llm-service/gen/go/llm/v1/llmv1connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
)

type protocol struct {
	name   string
	client *http.Client
	opts   []connect.ClientOption
}

func protocols() []protocol {
	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	http2Client := &http.Client{Transport: &http.Transport{Protocols: &h2c}}
	return []protocol{
		{name: "connect", client: http.DefaultClient},
		{name: "grpc", client: http2Client, opts: []connect.ClientOption{connect.WithGRPC()}},
		{name: "grpc-web", client: http.DefaultClient, opts: []connect.ClientOption{connect.WithGRPCWeb()}},
	}
}

// bearerInterceptor sends the key on unary and streaming calls alike.
type bearerInterceptor string

func (b bearerInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("authorization", "Bearer "+string(b))
		return next(ctx, req)
	}
}

func (b bearerInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("authorization", "Bearer "+string(b))
		return conn
	}
}

func (bearerInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

func connectClient(p protocol) llmv1connect.LlmServiceClient {
	opts := append([]connect.ClientOption{connect.WithInterceptors(bearerInterceptor(svc.key))}, p.opts...)
	return llmv1connect.NewLlmServiceClient(p.client, "http://"+svc.addr, opts...)
}

func deadline(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

func TestConnectGoClientOverEachProtocol(t *testing.T) {
	for _, p := range protocols() {
		t.Run(p.name, func(t *testing.T) {
			client := connectClient(p)

			t.Run("ListModels", func(t *testing.T) {
				resp, err := client.ListModels(deadline(t, 5*time.Second), connect.NewRequest(&llmv1.ListModelsRequest{}))
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, m := range resp.Msg.GetModels() {
					ids = append(ids, m.GetId())
				}
				if got := strings.Join(ids, ","); got != "sim/echo,sim/lorem,sim/embed" {
					t.Errorf("models = %s", got)
				}
			})

			t.Run("Generate", func(t *testing.T) {
				resp, err := client.Generate(deadline(t, 10*time.Second), connect.NewRequest(&llmv1.GenerateRequest{
					Model:    "echo",
					Messages: user("Hello over " + p.name),
				}))
				if err != nil {
					t.Fatal(err)
				}
				if resp.Msg.GetText() != "Hello over "+p.name || resp.Msg.GetFinishReason() != llmv1.FinishReason_FINISH_REASON_STOP {
					t.Errorf("response = %v", resp.Msg)
				}
			})

			t.Run("StreamGenerate", func(t *testing.T) {
				stream, err := client.StreamGenerate(deadline(t, 10*time.Second), connect.NewRequest(&llmv1.StreamGenerateRequest{
					Model:    "echo",
					Messages: user("alpha beta gamma"),
				}))
				if err != nil {
					t.Fatal(err)
				}
				defer stream.Close()
				var kinds []string
				var text strings.Builder
				for stream.Receive() {
					switch e := stream.Msg().GetEvent().(type) {
					case *llmv1.StreamGenerateResponse_Started:
						kinds = append(kinds, "started")
					case *llmv1.StreamGenerateResponse_Delta:
						kinds = append(kinds, "delta")
						text.WriteString(e.Delta.GetText())
					case *llmv1.StreamGenerateResponse_Completed:
						kinds = append(kinds, "completed")
						if e.Completed.GetUsage().GetOutputTokens() != 3 {
							t.Errorf("completed = %v", e.Completed)
						}
					}
				}
				if err := stream.Err(); err != nil {
					t.Fatal(err)
				}
				if got := strings.Join(kinds, " "); got != "started delta delta delta completed" || text.String() != "alpha beta gamma" {
					t.Errorf("events = %s, text = %q", got, text.String())
				}
			})

			t.Run("BatchGenerate and GetUsage", func(t *testing.T) {
				batch, err := client.BatchGenerate(deadline(t, 10*time.Second), connect.NewRequest(&llmv1.BatchGenerateRequest{
					Requests: []*llmv1.GenerateRequest{{Model: "echo", Messages: user("batched")}},
				}))
				if err != nil {
					t.Fatal(err)
				}
				if len(batch.Msg.GetResults()) != 1 || batch.Msg.GetResults()[0].GetResponse().GetText() != "batched" {
					t.Errorf("batch = %v", batch.Msg)
				}
				usage, err := client.GetUsage(deadline(t, 5*time.Second), connect.NewRequest(&llmv1.GetUsageRequest{}))
				if err != nil {
					t.Fatal(err)
				}
				if usage.Msg.GetTenant() != "default" {
					t.Errorf("usage = %v", usage.Msg)
				}
			})

			t.Run("error details", func(t *testing.T) {
				_, err := client.Generate(deadline(t, 5*time.Second), connect.NewRequest(&llmv1.GenerateRequest{
					Model:    "echo",
					Messages: user("hi"),
					Metadata: map[string]string{"sim-fail": "PROVIDER_RATE_LIMITED", "sim-retry-after-ms": "30000"},
				}))
				var cerr *connect.Error
				if !errors.As(err, &cerr) || cerr.Code() != connect.CodeResourceExhausted {
					t.Fatalf("err = %v, want resource_exhausted", err)
				}
				var info *errdetails.ErrorInfo
				var retry *errdetails.RetryInfo
				for _, d := range cerr.Details() {
					v, err := d.Value()
					if err != nil {
						t.Fatalf("detail %s: %v", d.Type(), err)
					}
					switch v := v.(type) {
					case *errdetails.ErrorInfo:
						info = v
					case *errdetails.RetryInfo:
						retry = v
					}
				}
				if info.GetReason() != "PROVIDER_RATE_LIMITED" || info.GetDomain() != "llm-service" {
					t.Errorf("ErrorInfo = %v", info)
				}
				if retry.GetRetryDelay().AsDuration() != 30*time.Second {
					t.Errorf("RetryInfo = %v", retry)
				}
			})

			t.Run("deadline", func(t *testing.T) {
				started := time.Now()
				_, err := client.Generate(deadline(t, 300*time.Millisecond), connect.NewRequest(&llmv1.GenerateRequest{
					Model:    "echo",
					Messages: user("slow"),
					Metadata: map[string]string{"sim-stall-ms": "5000"},
				}))
				if code := connect.CodeOf(err); code != connect.CodeDeadlineExceeded {
					t.Fatalf("err = %v, want deadline_exceeded", err)
				}
				if elapsed := time.Since(started); elapsed > 2*time.Second {
					t.Errorf("took %s with a 300 ms deadline", elapsed)
				}
			})
		})
	}
}
