// Command example calls llm-service with the generated Go SDK (grpc-go client): it lists the
// models, generates one answer, streams another token by token under a deadline, and handles a
// RESOURCE_EXHAUSTED error by waiting the RetryInfo delay the service sends and trying again.
//
//	export LLM_API_KEY=...                  # printed by the service on its first start
//	eval "$(bash ../../scripts/go-sdk-proxy.sh)"  # the SDK from this checkout, at the version go.mod requires
//	go run .                                # LLM_SERVICE_ADDR defaults to 127.0.0.1:8080
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"

	llmv1 "github.com/llm-service/llm-service/gen/go/llm/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

func main() {
	addr := envOr("LLM_SERVICE_ADDR", "127.0.0.1:8080")
	key := os.Getenv("LLM_API_KEY")
	if key == "" {
		log.Fatal("set LLM_API_KEY (the service prints a development key on its first start)")
	}

	// One connection for the whole program; every call carries the key.
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(bearer(key)))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := llmv1.NewLlmServiceClient(conn)

	if err := run(context.Background(), client); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, client llmv1.LlmServiceClient) error {
	// 1. The models this key may use.
	{
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		models, err := client.ListModels(ctx, &llmv1.ListModelsRequest{})
		if err != nil {
			return fmt.Errorf("ListModels: %w", err)
		}
		for _, m := range models.GetModels() {
			fmt.Printf("model: %s (aliases %s, context window %d)\n", m.GetId(), strings.Join(m.GetAliases(), ", "), m.GetContextWindow())
		}
	}

	// 2. One complete answer.
	{
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		resp, err := client.Generate(ctx, &llmv1.GenerateRequest{
			Model:    "echo",
			Messages: []*llmv1.Message{{Role: llmv1.Role_ROLE_USER, Content: "Hello from Go!"}},
		})
		if err != nil {
			return fmt.Errorf("Generate: %w", err)
		}
		fmt.Printf("generate: %q (model %s, %d tokens, cost %d nano-USD)\n",
			resp.GetText(), resp.GetModel(), resp.GetUsage().GetTotalTokens(), resp.GetCostUsdNanos())
	}

	// 3. Tokens as they come, under a 10 s deadline for the whole stream. Cancelling ctx (or the
	// deadline passing) stops the call on the service and upstream too.
	{
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		stream, err := client.StreamGenerate(ctx, &llmv1.StreamGenerateRequest{
			Model:    "echo",
			Messages: []*llmv1.Message{{Role: llmv1.Role_ROLE_USER, Content: "Stream these words"}},
		})
		if err != nil {
			return fmt.Errorf("StreamGenerate: %w", err)
		}
		fmt.Print("stream:")
		for {
			event, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				// A stream that breaks ends with an error status, never with io.EOF.
				return fmt.Errorf("StreamGenerate: %w", err)
			}
			switch e := event.GetEvent().(type) {
			case *llmv1.StreamGenerateResponse_Started:
				fmt.Printf(" [started %s on %s]", e.Started.GetModel(), e.Started.GetProvider())
			case *llmv1.StreamGenerateResponse_Delta:
				fmt.Printf(" %q", e.Delta.GetText())
			case *llmv1.StreamGenerateResponse_Completed:
				fmt.Printf(" [completed %s, %d tokens]\n", e.Completed.GetFinishReason(), e.Completed.GetUsage().GetTotalTokens())
			}
		}
	}

	// 4. RESOURCE_EXHAUSTED with RetryInfo: the sim provider's test knobs script an upstream 429
	// with Retry-After 1.5 s. Within a 1 s deadline the service cannot wait that long, so it answers
	// at once with the delay in RetryInfo; the caller waits it out and tries again (here without the
	// scripted failure). A key created with `npm run keys -- create --name x --rpm 1` hits this
	// service's own rate limit (reason RATE_LIMITED) the same way.
	scripted := map[string]string{"sim-fail": "PROVIDER_RATE_LIMITED", "sim-retry-after-ms": "1500"}
	for attempt := 1; ; attempt++ {
		callCtx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := client.Generate(callCtx, &llmv1.GenerateRequest{
			Model:    "echo",
			Messages: []*llmv1.Message{{Role: llmv1.Role_ROLE_USER, Content: "Worth the wait"}},
			Metadata: scripted,
		})
		cancel()
		if err == nil {
			fmt.Printf("retried: %q after %d attempt(s)\n", resp.GetText(), attempt)
			return nil
		}
		delay, retryable := retryDelay(err)
		if !retryable || attempt == 3 {
			return fmt.Errorf("Generate: %w", err)
		}
		fmt.Printf("rate limited: %s, reason %s, retry after %s\n", status.Code(err), reason(err), delay)
		time.Sleep(delay)
		scripted = nil
	}
}

// retryDelay reports whether err is RESOURCE_EXHAUSTED with a RetryInfo, and its delay.
func retryDelay(err error) (time.Duration, bool) {
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		return 0, false
	}
	for _, detail := range st.Details() {
		if info, ok := detail.(*errdetails.RetryInfo); ok {
			return info.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}

// reason is the ErrorInfo reason every llm-service error carries (domain "llm-service").
func reason(err error) string {
	for _, detail := range status.Convert(err).Details() {
		if info, ok := detail.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// bearer sends `authorization: Bearer <key>` with every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false: the service listens on cleartext h2c by default. Use TLS
// credentials (and return true) when the service runs with TLS_CERT_FILE.
func (bearer) RequireTransportSecurity() bool { return false }

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
