// Package receive serves the OTLP metrics endpoints: gRPC (opentelemetry.proto.collector.
// metrics.v1.MetricsService/Export, default :4317) and HTTP (POST /v1/metrics, default :4318,
// protobuf or JSON, optionally gzip-compressed), for fleetwatt agents and any OpenTelemetry SDK
// or Collector.
//
// A request is acknowledged only after the Consumer returned, that is after the data is
// stored: a retryable failure becomes gRPC Unavailable / HTTP 503 with a retry delay, so the
// sender keeps the data and sends it again; a permanent one (data the store refuses) becomes
// InvalidArgument / 400; data points the consumer left out are reported as an OTLP partial
// success, as the OTLP specification asks.
//
// With Config.TLS both receivers serve TLS only, and with a client CA they require client
// certificates (mTLS). With Config.Auth every request must carry "authorization: Bearer
// <token>" (gRPC metadata or HTTP header): a missing or unknown token is answered
// Unauthenticated / 401, data for a region the token may not write PermissionDenied / 403;
// neither is consumed, and both are counted (Stats).
package receive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/encoding/gzip" // accept gzip-compressed gRPC requests, as OTLP exporters send them
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/fleetwatt/fleetwatt/collector/internal/auth"
)

// Consumer takes the metrics of one export request. It returns only once it is done with
// them (stored, or refused).
type Consumer interface {
	ConsumeMetrics(ctx context.Context, md pmetric.Metrics) (Result, error)
}

// Result says what the consumer left out of a request it otherwise accepted.
type Result struct {
	RejectedDataPoints int64  // reported to the sender as partial_success.rejected_data_points
	ErrorMessage       string // why, for partial_success.error_message
}

// Config configures the receiver.
type Config struct {
	GRPCAddr string // "host:port" for OTLP/gRPC; "" disables it
	HTTPAddr string // "host:port" for OTLP/HTTP; "" disables it
	// MaxRequestBytes bounds a request (a gRPC message, an HTTP body before and after gzip
	// decompression); 0 means DefaultMaxRequestBytes.
	MaxRequestBytes int64
	// RetryAfter is the delay a sender is asked to wait after a retryable failure; 0 means
	// DefaultRetryAfter.
	RetryAfter time.Duration
	// TLS, when enabled, makes both receivers serve TLS (and mTLS with a client CA).
	TLS TLS
	// Auth, when set, checks every request's bearer token and the regions it writes before
	// the request is consumed; nil accepts every request.
	Auth Authenticator
	// MaxInFlight bounds the requests being decoded, converted and stored at once, over both
	// receivers; beyond it a request is answered "try later" (HTTP 503, gRPC
	// RESOURCE_EXHAUSTED) at once. With MaxRequestBytes it bounds the memory requests take.
	// 0 means DefaultMaxInFlight.
	MaxInFlight int
}

// Authenticator decides who sent a request and whether they may write its data.
// Authenticate's errors are answered Unauthenticated / 401; Allowed's errors that wrap
// auth.ErrForbidden PermissionDenied / 403, others Unauthenticated / 401. Error messages go
// back to the sender and into the log, so they must never contain the token.
type Authenticator interface {
	// Authenticate checks the Authorization value ("Bearer <token>"; "" when absent).
	Authenticate(header string) (auth.Principal, error)
	// Allowed checks that p may write every resource in md.
	Allowed(p auth.Principal, md pmetric.Metrics) error
}

var _ Authenticator = (*auth.Tokens)(nil)

// Stats are the receiver's counters of refused requests.
type Stats struct {
	Unauthenticated uint64 // requests without a valid token
	Forbidden       uint64 // requests with data for a region their token may not write
	Busy            uint64 // requests refused because MaxInFlight were being processed
}

// Defaults.
const (
	DefaultGRPCAddr        = ":4317"
	DefaultHTTPAddr        = ":4318"
	DefaultMaxRequestBytes = 16 << 20
	DefaultRetryAfter      = 5 * time.Second
)

// Receiver serves OTLP over gRPC and HTTP. Start it once, then Shutdown.
type Receiver struct {
	cfg  Config
	next Consumer
	log  *slog.Logger

	grpcSrv  *grpc.Server
	httpSrv  *http.Server
	grpcAddr net.Addr
	httpAddr net.Addr
	wg       sync.WaitGroup

	unauthenticated, forbidden atomic.Uint64
	inFlight                   chan struct{} // a token per request being processed
	busy                       atomic.Uint64 // requests refused because MaxInFlight were in flight
}

// DefaultMaxInFlight is the default bound on requests processed at once: with 16 MiB
// requests, at most about 1 GiB of request data in memory.
const DefaultMaxInFlight = 64

// errBusy is the answer when MaxInFlight requests are already being processed.
const errBusy = "the collector is busy: too many requests at once; retry later"

// acquire takes an in-flight slot without waiting; release gives it back.
func (r *Receiver) acquire() bool {
	select {
	case r.inFlight <- struct{}{}:
		return true
	default:
		r.busy.Add(1)
		return false
	}
}

func (r *Receiver) release() { <-r.inFlight }

// New returns a receiver that hands every request to next.
func New(cfg Config, next Consumer, log *slog.Logger) *Receiver {
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = DefaultRetryAfter
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	return &Receiver{cfg: cfg, next: next, log: log, inFlight: make(chan struct{}, cfg.MaxInFlight)}
}

// Start listens on the configured addresses and serves in the background. Errors binding
// an address are returned; nothing is left listening then.
func (r *Receiver) Start(context.Context) error {
	tlsCfg, err := r.cfg.TLS.ServerConfig()
	if err != nil {
		return err
	}
	if r.cfg.Auth != nil && tlsCfg == nil && (r.cfg.GRPCAddr != "" || r.cfg.HTTPAddr != "") {
		r.log.Warn("bearer tokens are accepted without TLS: anyone on the network path can read them; configure tls")
	}
	var gl, hl net.Listener
	if r.cfg.GRPCAddr != "" {
		if gl, err = net.Listen("tcp", r.cfg.GRPCAddr); err != nil {
			return fmt.Errorf("listen for otlp/grpc on %s: %w", r.cfg.GRPCAddr, err)
		}
	}
	if r.cfg.HTTPAddr != "" {
		if hl, err = net.Listen("tcp", r.cfg.HTTPAddr); err != nil {
			if gl != nil {
				gl.Close()
			}
			return fmt.Errorf("listen for otlp/http on %s: %w", r.cfg.HTTPAddr, err)
		}
	}
	if gl != nil {
		r.grpcAddr = gl.Addr()
		opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(int(r.cfg.MaxRequestBytes))}
		if tlsCfg != nil {
			opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
		}
		r.grpcSrv = grpc.NewServer(opts...)
		pmetricotlp.RegisterGRPCServer(r.grpcSrv, &grpcServer{r: r})
		r.wg.Go(func() {
			if err := r.grpcSrv.Serve(gl); err != nil {
				r.log.Error("otlp/grpc server stopped", "addr", r.grpcAddr.String(), "error", err)
			}
		})
	}
	if hl != nil {
		r.httpAddr = hl.Addr()
		r.httpSrv = &http.Server{
			Handler:           r.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       time.Minute,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelWarn),
			TLSConfig:         tlsCfg,
		}
		r.wg.Go(func() {
			serve := r.httpSrv.Serve
			if tlsCfg != nil {
				// The certificate is in TLSConfig; ServeTLS adds HTTP/2 to it.
				serve = func(l net.Listener) error { return r.httpSrv.ServeTLS(l, "", "") }
			}
			if err := serve(hl); err != nil && !errors.Is(err, http.ErrServerClosed) {
				r.log.Error("otlp/http server stopped", "addr", r.httpAddr.String(), "error", err)
			}
		})
	}
	return nil
}

// GRPCAddr is the address the gRPC server listens on (nil when disabled or not started).
func (r *Receiver) GRPCAddr() net.Addr { return r.grpcAddr }

// HTTPAddr is the address the HTTP server listens on (nil when disabled or not started).
func (r *Receiver) HTTPAddr() net.Addr { return r.httpAddr }

// Stats returns the counters since New.
func (r *Receiver) Stats() Stats {
	return Stats{Unauthenticated: r.unauthenticated.Load(), Forbidden: r.forbidden.Load(), Busy: r.busy.Load()}
}

// Shutdown stops accepting requests and waits for those in flight to finish (their data
// written and acknowledged). When ctx ends first it cuts them off, so their senders see an
// error and send again, and returns an error.
func (r *Receiver) Shutdown(ctx context.Context) error {
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	if r.httpSrv != nil {
		wg.Go(func() {
			if err := r.httpSrv.Shutdown(ctx); err != nil {
				_ = r.httpSrv.Close()
				mu.Lock()
				errs = append(errs, fmt.Errorf("shut down otlp/http server: %w", err))
				mu.Unlock()
			}
		})
	}
	if r.grpcSrv != nil {
		wg.Go(func() {
			done := make(chan struct{})
			go func() {
				r.grpcSrv.GracefulStop()
				close(done)
			}()
			select {
			case <-done:
			case <-ctx.Done():
				r.grpcSrv.Stop()
				<-done
				mu.Lock()
				errs = append(errs, fmt.Errorf("shut down otlp/grpc server: %w", ctx.Err()))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	r.wg.Wait()
	return errors.Join(errs...)
}

// outcome is what a request came to, in protocol-neutral terms.
type outcome struct {
	result    Result
	code      codes.Code // codes.OK, Unavailable, InvalidArgument, Internal, Unauthenticated or PermissionDenied
	message   string
	retryable bool
}

// consume hands md to the consumer and says how to answer the sender.
func (r *Receiver) consume(ctx context.Context, md pmetric.Metrics) (o outcome) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("otlp consumer panicked", "panic", fmt.Sprint(p))
			o = outcome{code: codes.Internal, message: "internal error"}
		}
	}()
	res, err := r.next.ConsumeMetrics(ctx, md)
	switch {
	case err == nil:
		return outcome{result: res, code: codes.OK}
	case IsPermanent(err):
		return outcome{code: codes.InvalidArgument, message: err.Error()}
	default:
		return outcome{code: codes.Unavailable, message: err.Error(), retryable: true}
	}
}

// authenticate checks the request's Authorization value when authentication is configured,
// and returns ctx carrying the principal (auth.FromContext), for per-token accounting
// downstream. A refusal is a non-nil outcome.
func (r *Receiver) authenticate(ctx context.Context, header string) (context.Context, *outcome) {
	if r.cfg.Auth == nil {
		return ctx, nil
	}
	p, err := r.cfg.Auth.Authenticate(header)
	if err != nil {
		return ctx, r.refuse(err)
	}
	return auth.NewContext(ctx, p), nil
}

// allowed checks that the principal authenticate put in ctx may write md.
func (r *Receiver) allowed(ctx context.Context, md pmetric.Metrics) *outcome {
	if r.cfg.Auth == nil {
		return nil
	}
	p, ok := auth.FromContext(ctx)
	if !ok {
		return r.refuse(fmt.Errorf("%w: request not authenticated", auth.ErrUnauthenticated))
	}
	if err := r.cfg.Auth.Allowed(p, md); err != nil {
		return r.refuse(err)
	}
	return nil
}

// refuse counts a refused request and says how to answer it. The first refusal of each kind
// is logged; the rest are counted, so that a misconfigured fleet does not flood the log.
func (r *Receiver) refuse(err error) *outcome {
	if errors.Is(err, auth.ErrForbidden) {
		if r.forbidden.Add(1) == 1 {
			r.log.Warn("otlp request refused: token may not write this data; further refusals are counted", "error", err)
		}
		return &outcome{code: codes.PermissionDenied, message: err.Error()}
	}
	if r.unauthenticated.Add(1) == 1 {
		r.log.Warn("otlp request refused: no valid bearer token; further refusals are counted", "error", err)
	}
	return &outcome{code: codes.Unauthenticated, message: err.Error()}
}

func (o outcome) response() pmetricotlp.ExportResponse {
	resp := pmetricotlp.NewExportResponse()
	if o.result.RejectedDataPoints > 0 || o.result.ErrorMessage != "" {
		ps := resp.PartialSuccess()
		ps.SetRejectedDataPoints(o.result.RejectedDataPoints)
		ps.SetErrorMessage(o.result.ErrorMessage)
	}
	return resp
}

// grpcServer implements the OTLP MetricsService.
type grpcServer struct {
	pmetricotlp.UnimplementedGRPCServer
	r *Receiver
}

var _ pmetricotlp.GRPCServer = (*grpcServer)(nil)

func (s *grpcServer) Export(ctx context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	if !s.r.acquire() {
		return pmetricotlp.NewExportResponse(), status.Error(codes.ResourceExhausted, errBusy)
	}
	defer s.r.release()
	var header string
	if v := metadata.ValueFromIncomingContext(ctx, "authorization"); len(v) > 0 {
		header = v[0]
	}
	ctx, refused := s.r.authenticate(ctx, header)
	if refused == nil {
		refused = s.r.allowed(ctx, req.Metrics())
	}
	if refused != nil {
		return pmetricotlp.NewExportResponse(), status.Error(refused.code, refused.message)
	}
	o := s.r.consume(ctx, req.Metrics())
	if o.code == codes.OK {
		return o.response(), nil
	}
	st := status.New(o.code, o.message)
	if o.retryable {
		// OTLP exporters honour RetryInfo as the gRPC form of Retry-After.
		if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(s.r.cfg.RetryAfter)}); err == nil {
			st = d
		}
	}
	return pmetricotlp.NewExportResponse(), st.Err()
}

// permanentError marks a consumer error that sending the same data again cannot cure.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as permanent: the receiver answers InvalidArgument / 400 and the
// sender drops the data instead of retrying. Unmarked consumer errors are retryable.
func Permanent(err error) error { return permanentError{err} }

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}
