package receive

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// TestBusyIsTryLater: with MaxInFlight requests being stored, the next one is answered "try
// later" at once on both receivers, and the collector takes requests again once one is done.
func TestBusyIsTryLater(t *testing.T) {
	t.Parallel()
	s := &sink{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	r := start(t, Config{MaxInFlight: 1}, s)
	body, err := pmetricotlp.NewExportRequestFromMetrics(pmetric.NewMetrics()).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	post := func() *http.Response {
		resp, err := http.Post("http://"+r.HTTPAddr().String()+"/v1/metrics", "application/x-protobuf", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	first := make(chan int, 1)
	go func() { first <- post().StatusCode }()
	<-s.entered // the first request holds the only slot

	if resp := post(); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("HTTP while busy: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	conn, err := grpc.NewClient(r.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = pmetricotlp.NewGRPCClient(conn).Export(context.Background(), pmetricotlp.NewExportRequest())
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("gRPC while busy: %v, want ResourceExhausted", err)
	}
	if got := r.Stats().Busy; got != 2 {
		t.Errorf("Stats().Busy = %d, want 2", got)
	}

	close(s.block)
	if code := <-first; code != http.StatusOK {
		t.Errorf("the first request: %d, want 200", code)
	}
	if resp := post(); resp.StatusCode != http.StatusOK {
		t.Errorf("after the first request: %d, want 200", resp.StatusCode)
	}
}
