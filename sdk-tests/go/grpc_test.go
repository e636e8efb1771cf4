package sdktests

// The grpc-go client of gen/go against the running service: every RPC, stream order, deadlines,
// cancellation that reaches the service's ledger, and google.rpc error details.

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	llmv1 "github.com/llm-service/llm-service/gen/go/llm/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func grpcClient(t *testing.T) llmv1.LlmServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(svc.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return llmv1.NewLlmServiceClient(conn)
}

// authed is ctx with the development key and a deadline.
func authed(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+svc.key)
}

func user(text string) []*llmv1.Message {
	return []*llmv1.Message{{Role: llmv1.Role_ROLE_USER, Content: text}}
}

// errorDetails decodes the google.rpc details of a gRPC error.
type errorDetails struct {
	info  *errdetails.ErrorInfo
	retry *errdetails.RetryInfo
	bad   *errdetails.BadRequest
}

func detailsOf(t *testing.T, st *status.Status) errorDetails {
	t.Helper()
	var d errorDetails
	for _, detail := range st.Details() {
		switch v := detail.(type) {
		case *errdetails.ErrorInfo:
			d.info = v
		case *errdetails.RetryInfo:
			d.retry = v
		case *errdetails.BadRequest:
			d.bad = v
		case error:
			t.Fatalf("undecodable error detail: %v", v)
		}
	}
	if d.info == nil {
		t.Fatalf("%s error %q has no ErrorInfo", st.Code(), st.Message())
	}
	if d.info.GetDomain() != "llm-service" {
		t.Errorf("ErrorInfo domain = %q, want llm-service", d.info.GetDomain())
	}
	if d.info.GetMetadata()["request_id"] == "" {
		t.Errorf("ErrorInfo metadata has no request_id: %v", d.info.GetMetadata())
	}
	return d
}

func mustCode(t *testing.T, err error, want codes.Code) *status.Status {
	t.Helper()
	if err == nil {
		t.Fatalf("the call succeeded, want %s", want)
	}
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("not a gRPC status error: %v", err)
	}
	if st.Code() != want {
		t.Fatalf("code = %s (%q), want %s", st.Code(), st.Message(), want)
	}
	return st
}

func TestGRPCListModelsListsTheSimCatalogue(t *testing.T) {
	resp, err := grpcClient(t).ListModels(authed(t, 5*time.Second), &llmv1.ListModelsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*llmv1.Model{}
	for _, m := range resp.GetModels() {
		byID[m.GetId()] = m
	}
	echo := byID["sim/echo"]
	if echo == nil || byID["sim/lorem"] == nil {
		t.Fatalf("models = %v, want sim/echo and sim/lorem", resp.GetModels())
	}
	if len(echo.GetAliases()) != 1 || echo.GetAliases()[0] != "echo" || echo.GetProvider() != "sim" || echo.GetContextWindow() <= 0 {
		t.Errorf("sim/echo = %v", echo)
	}
	if len(echo.GetDeployments()) == 0 || echo.GetDeployments()[0].GetState() != llmv1.CircuitState_CIRCUIT_STATE_CLOSED {
		t.Errorf("sim/echo deployments = %v, want one with a closed circuit", echo.GetDeployments())
	}
}

func TestGRPCGenerateReturnsTheAnswerWithUsageAndCost(t *testing.T) {
	resp, err := grpcClient(t).Generate(authed(t, 10*time.Second), &llmv1.GenerateRequest{
		Model:    "echo",
		Messages: user("Hello from the Go SDK"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetText() != "Hello from the Go SDK" || resp.GetModel() != "sim/echo" || resp.GetProvider() != "sim" {
		t.Errorf("response = %v", resp)
	}
	if !uuidPattern.MatchString(resp.GetId()) || resp.GetFinishReason() != llmv1.FinishReason_FINISH_REASON_STOP || resp.GetAttempts() != 1 {
		t.Errorf("response = %v", resp)
	}
	u := resp.GetUsage()
	if u.GetInputTokens() <= 0 || u.GetOutputTokens() <= 0 || u.GetTotalTokens() != u.GetInputTokens()+u.GetOutputTokens() || resp.GetCostUsdNanos() <= 0 {
		t.Errorf("usage = %v, cost = %d", u, resp.GetCostUsdNanos())
	}
}

func TestGRPCStreamGenerateSendsStartedDeltasThenCompleted(t *testing.T) {
	stream, err := grpcClient(t).StreamGenerate(authed(t, 10*time.Second), &llmv1.StreamGenerateRequest{
		Model:    "echo",
		Messages: user("one two three four"),
	})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	var text strings.Builder
	var started *llmv1.StreamStarted
	var completed *llmv1.StreamCompleted
	for {
		event, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch e := event.GetEvent().(type) {
		case *llmv1.StreamGenerateResponse_Started:
			kinds = append(kinds, "started")
			started = e.Started
		case *llmv1.StreamGenerateResponse_Delta:
			kinds = append(kinds, "delta")
			text.WriteString(e.Delta.GetText())
		case *llmv1.StreamGenerateResponse_Completed:
			kinds = append(kinds, "completed")
			completed = e.Completed
		default:
			t.Fatalf("unknown event %v", event)
		}
	}
	want := "started delta delta delta delta completed"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("events = %s, want %s", got, want)
	}
	if text.String() != "one two three four" {
		t.Errorf("text = %q", text.String())
	}
	if !uuidPattern.MatchString(started.GetId()) || started.GetModel() != "sim/echo" || started.GetProvider() != "sim" {
		t.Errorf("started = %v", started)
	}
	if completed.GetFinishReason() != llmv1.FinishReason_FINISH_REASON_STOP || completed.GetUsage().GetOutputTokens() != 4 || completed.GetCostUsdNanos() <= 0 || completed.GetAttempts() != 1 {
		t.Errorf("completed = %v", completed)
	}
	if got, ok := ledgerStatus(t, started.GetId()); ok && got != "ok" {
		t.Errorf("ledger status = %q, want ok", got)
	}
}

func TestGRPCBatchGenerateAnswersEachItemWithAResponseOrAStatus(t *testing.T) {
	resp, err := grpcClient(t).BatchGenerate(authed(t, 10*time.Second), &llmv1.BatchGenerateRequest{
		Requests: []*llmv1.GenerateRequest{
			{Model: "echo", Messages: user("first item")},
			{Model: "no-such-model", Messages: user("second item")},
			{Model: "sim/echo", Messages: user("third item")},
		},
		MaxConcurrency: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetResults()) != 3 {
		t.Fatalf("results = %v, want 3", resp.GetResults())
	}
	for i, r := range resp.GetResults() {
		if r.GetIndex() != uint32(i) {
			t.Errorf("result %d has index %d", i, r.GetIndex())
		}
	}
	if got := resp.GetResults()[0].GetResponse().GetText(); got != "first item" {
		t.Errorf("item 0 text = %q", got)
	}
	if got := resp.GetResults()[2].GetResponse().GetText(); got != "third item" {
		t.Errorf("item 2 text = %q", got)
	}
	failed := resp.GetResults()[1].GetError()
	if failed == nil {
		t.Fatalf("item 1 = %v, want an error status", resp.GetResults()[1])
	}
	st := status.FromProto(failed)
	if st.Code() != codes.NotFound {
		t.Errorf("item 1 code = %s, want NotFound", st.Code())
	}
	if d := detailsOf(t, st); d.info.GetReason() != "MODEL_NOT_FOUND" || d.info.GetMetadata()["model"] != "no-such-model" {
		t.Errorf("item 1 ErrorInfo = %v", d.info)
	}
}

func TestGRPCGetUsageSumsTheTenantsRequests(t *testing.T) {
	client := grpcClient(t)
	if _, err := client.Generate(authed(t, 10*time.Second), &llmv1.GenerateRequest{Model: "echo", Messages: user("count me")}); err != nil {
		t.Fatal(err)
	}
	// The ledger writes off the hot path: wait for the row to show.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.GetUsage(authed(t, 5*time.Second), &llmv1.GetUsageRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetTenant() != "default" {
			t.Fatalf("tenant = %q, want default", resp.GetTenant())
		}
		if !resp.GetStartTime().AsTime().Before(resp.GetEndTime().AsTime()) {
			t.Errorf("range %v .. %v", resp.GetStartTime().AsTime(), resp.GetEndTime().AsTime())
		}
		var echo *llmv1.UsageTotals
		for _, m := range resp.GetByModel() {
			if m.GetModel() == "sim/echo" {
				echo = m.GetTotals()
			}
		}
		tot := resp.GetTotals()
		if echo != nil && echo.GetSucceeded() >= 1 && tot.GetRequests() >= echo.GetRequests() && tot.GetUsage().GetTotalTokens() > 0 && tot.GetCostUsdNanos() > 0 {
			if len(resp.GetByKey()) == 0 || len(resp.GetByDay()) == 0 {
				t.Errorf("by_key = %v, by_day = %v", resp.GetByKey(), resp.GetByDay())
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GetUsage never showed the request: %v", resp)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestGRPCDeadlineExceededWhenTheModelStalls(t *testing.T) {
	client := grpcClient(t)
	stall := map[string]string{"sim-stall-ms": "5000"}

	started := time.Now()
	_, err := client.Generate(authed(t, 300*time.Millisecond), &llmv1.GenerateRequest{Model: "echo", Messages: user("slow"), Metadata: stall})
	mustCode(t, err, codes.DeadlineExceeded)
	if elapsed := time.Since(started); elapsed > 2*time.Second {
		t.Errorf("Generate took %s with a 300 ms deadline", elapsed)
	}

	started = time.Now()
	stream, err := client.StreamGenerate(authed(t, 300*time.Millisecond), &llmv1.StreamGenerateRequest{Model: "echo", Messages: user("slow"), Metadata: stall})
	if err == nil {
		for err == nil {
			_, err = stream.Recv()
		}
	}
	mustCode(t, err, codes.DeadlineExceeded)
	if elapsed := time.Since(started); elapsed > 2*time.Second {
		t.Errorf("StreamGenerate took %s with a 300 ms deadline", elapsed)
	}
}

func TestGRPCCancellingAStreamReachesTheService(t *testing.T) {
	client := grpcClient(t)
	failedBefore := lorem(t, client).GetFailed()

	ctx, cancel := context.WithCancel(authed(t, 30*time.Second))
	defer cancel()
	stream, err := client.StreamGenerate(ctx, &llmv1.StreamGenerateRequest{
		Model:           "sim/lorem",
		Messages:        user("take your time"),
		MaxOutputTokens: proto.Int32(200),
		Metadata:        map[string]string{"sim-inter-token-ms": "200"},
	})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	requestID := first.GetStarted().GetId()
	if _, err := stream.Recv(); err != nil { // one delta: the model is producing
		t.Fatal(err)
	}
	cancel()
	for err == nil {
		_, err = stream.Recv()
	}
	mustCode(t, err, codes.Canceled)

	// The service saw the cancellation: GetUsage counts the request as failed (failed or cancelled)...
	deadline := time.Now().Add(10 * time.Second)
	for lorem(t, client).GetFailed() != failedBefore+1 {
		if time.Now().After(deadline) {
			t.Fatalf("GetUsage for sim/lorem never counted the cancelled request (failed stayed %d)", failedBefore)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// ...and its ledger row says cancelled.
	if got, ok := ledgerStatus(t, requestID); ok && got != "cancelled" {
		t.Errorf("ledger status = %q, want cancelled", got)
	}
}

// lorem is GetUsage's totals for sim/lorem, the model only the cancellation tests use.
func lorem(t *testing.T, client llmv1.LlmServiceClient) *llmv1.UsageTotals {
	t.Helper()
	resp, err := client.GetUsage(authed(t, 5*time.Second), &llmv1.GetUsageRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range resp.GetByModel() {
		if m.GetModel() == "sim/lorem" {
			return m.GetTotals()
		}
	}
	return &llmv1.UsageTotals{}
}

func TestGRPCErrorDetailsAreDecoded(t *testing.T) {
	client := grpcClient(t)

	t.Run("unknown model: NOT_FOUND with ErrorInfo", func(t *testing.T) {
		_, err := client.Generate(authed(t, 5*time.Second), &llmv1.GenerateRequest{Model: "gpt-9", Messages: user("hi")})
		d := detailsOf(t, mustCode(t, err, codes.NotFound))
		if d.info.GetReason() != "MODEL_NOT_FOUND" || d.info.GetMetadata()["model"] != "gpt-9" {
			t.Errorf("ErrorInfo = %v", d.info)
		}
		if d.info.GetReason() != strings.TrimPrefix(llmv1.ErrorReason_ERROR_REASON_MODEL_NOT_FOUND.String(), "ERROR_REASON_") {
			t.Errorf("reason %q is not the proto's ErrorReason name", d.info.GetReason())
		}
	})

	t.Run("no messages: INVALID_ARGUMENT with BadRequest", func(t *testing.T) {
		_, err := client.Generate(authed(t, 5*time.Second), &llmv1.GenerateRequest{Model: "echo"})
		d := detailsOf(t, mustCode(t, err, codes.InvalidArgument))
		if d.info.GetReason() != "INVALID_REQUEST" {
			t.Errorf("ErrorInfo = %v", d.info)
		}
		if len(d.bad.GetFieldViolations()) == 0 || d.bad.GetFieldViolations()[0].GetField() != "messages" {
			t.Errorf("BadRequest = %v", d.bad)
		}
	})

	t.Run("no key: UNAUTHENTICATED", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := client.Generate(ctx, &llmv1.GenerateRequest{Model: "echo", Messages: user("hi")})
		if d := detailsOf(t, mustCode(t, err, codes.Unauthenticated)); d.info.GetReason() != "UNAUTHENTICATED" {
			t.Errorf("ErrorInfo = %v", d.info)
		}
	})

	t.Run("upstream 429: RESOURCE_EXHAUSTED with RetryInfo", func(t *testing.T) {
		_, err := client.Generate(authed(t, 5*time.Second), &llmv1.GenerateRequest{
			Model:    "echo",
			Messages: user("hi"),
			Metadata: map[string]string{"sim-fail": "PROVIDER_RATE_LIMITED", "sim-retry-after-ms": "30000"},
		})
		d := detailsOf(t, mustCode(t, err, codes.ResourceExhausted))
		if d.info.GetReason() != "PROVIDER_RATE_LIMITED" {
			t.Errorf("ErrorInfo = %v", d.info)
		}
		if d.retry == nil || d.retry.GetRetryDelay().AsDuration() != 30*time.Second {
			t.Errorf("RetryInfo = %v, want a 30 s delay", d.retry)
		}
	})

	t.Run("a stream that breaks ends with an error, not io.EOF", func(t *testing.T) {
		stream, err := client.StreamGenerate(authed(t, 10*time.Second), &llmv1.StreamGenerateRequest{
			Model:    "echo",
			Messages: user("one two three"),
			Metadata: map[string]string{"sim-fail": "PROVIDER_UNAVAILABLE", "sim-fail-after": "1"},
		})
		if err != nil {
			t.Fatal(err)
		}
		var text strings.Builder
		for err == nil {
			var event *llmv1.StreamGenerateResponse
			if event, err = stream.Recv(); err == nil {
				text.WriteString(event.GetDelta().GetText())
			}
		}
		if errors.Is(err, io.EOF) {
			t.Fatal("the broken stream ended cleanly")
		}
		if d := detailsOf(t, mustCode(t, err, codes.Unavailable)); d.info.GetReason() != "PROVIDER_UNAVAILABLE" {
			t.Errorf("ErrorInfo = %v", d.info)
		}
		if text.String() != "one " {
			t.Errorf("text before the failure = %q, want %q", text.String(), "one ")
		}
	})
}

func TestGRPCEmbedReturnsOneVectorPerInput(t *testing.T) {
	dims := int32(4)
	resp, err := grpcClient(t).Embed(authed(t, 5*time.Second), &llmv1.EmbedRequest{Model: "embed", Inputs: []string{"first text", "second"}, Dimensions: &dims})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetModel() != "sim/embed" || len(resp.GetEmbeddings()) != 2 {
		t.Fatalf("Embed = %v", resp)
	}
	for i, e := range resp.GetEmbeddings() {
		var norm float64
		for _, v := range e.GetValues() {
			norm += float64(v) * float64(v)
		}
		if int(e.GetIndex()) != i || len(e.GetValues()) != 4 || norm < 0.9999 || norm > 1.0001 {
			t.Errorf("embedding %d = %v (norm² %f)", i, e, norm)
		}
	}
	if u := resp.GetUsage(); u.GetInputTokens() != 3 || u.GetOutputTokens() != 0 {
		t.Errorf("usage = %v", u)
	}

	_, err = grpcClient(t).Embed(authed(t, 5*time.Second), &llmv1.EmbedRequest{Model: "echo", Inputs: []string{"x"}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Embed on a chat model: %v, want InvalidArgument", err)
	}
}
