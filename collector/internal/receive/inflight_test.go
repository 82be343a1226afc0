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
	// post answers the status and the Retry-After header.
	post := func() (int, string) {
		resp, err := http.Post("http://"+r.HTTPAddr().String()+"/v1/metrics", "application/x-protobuf", bytes.NewReader(body))
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	first := make(chan int, 1)
	go func() { code, _ := post(); first <- code }()
	<-s.entered // the first request holds the only slot

	if code, retry := post(); code != http.StatusServiceUnavailable || retry == "" {
		t.Errorf("HTTP while busy: %d, Retry-After %q; want 503 with Retry-After", code, retry)
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
	if code, _ := post(); code != http.StatusOK {
		t.Errorf("after the first request: %d, want 200", code)
	}
}
