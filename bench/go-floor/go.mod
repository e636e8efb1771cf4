module llm-service/bench/go-floor

go 1.22
