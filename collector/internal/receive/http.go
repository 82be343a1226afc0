package receive

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// MetricsPath is the OTLP/HTTP metrics endpoint.
const MetricsPath = "/v1/metrics"

const (
	contentTypeProtobuf = "application/x-protobuf"
	contentTypeJSON     = "application/json"
)

// Handler returns the OTLP/HTTP handler (POST /v1/metrics), for the receiver's own server or
// to mount elsewhere.
func (r *Receiver) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(MetricsPath, r.serveMetrics)
	return mux
}

// requestError is a request the receiver cannot decode, with its HTTP status.
type requestError struct {
	status int
	err    error
}

func (e *requestError) Error() string { return e.err.Error() }

func (r *Receiver) serveMetrics(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeStatus(w, contentTypeJSON, http.StatusMethodNotAllowed, codes.Unimplemented,
			fmt.Sprintf("method %s not allowed: OTLP/HTTP takes POST %s", req.Method, MetricsPath))
		return
	}
	// Answer in the request's encoding (JSON where it is unknown), as OTLP/HTTP asks.
	ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	respType := contentTypeJSON
	if ct == contentTypeProtobuf {
		respType = contentTypeProtobuf
	}
	if !r.acquire() {
		w.Header().Set("Retry-After", strconv.Itoa(int(r.cfg.RetryAfter.Seconds())))
		writeStatus(w, respType, http.StatusServiceUnavailable, codes.Unavailable, errBusy)
		return
	}
	defer r.release()
	// Refuse a sender without a valid token before reading what may be megabytes of body.
	ctx, refused := r.authenticate(req.Context(), req.Header.Get("Authorization"))
	if refused != nil {
		writeRefusal(w, respType, refused)
		return
	}
	body, err := readBody(w, req, r.cfg.MaxRequestBytes)
	if err == nil {
		var exp pmetricotlp.ExportRequest
		if exp, err = decode(ct, body); err == nil {
			if refused := r.allowed(ctx, exp.Metrics()); refused != nil {
				writeRefusal(w, respType, refused)
				return
			}
			r.export(w, req.WithContext(ctx), respType, exp)
			return
		}
	}
	var re *requestError
	if !errors.As(err, &re) {
		re = &requestError{http.StatusBadRequest, err}
	}
	writeStatus(w, respType, re.status, codes.InvalidArgument, re.Error())
}

func (r *Receiver) export(w http.ResponseWriter, req *http.Request, respType string, exp pmetricotlp.ExportRequest) {
	o := r.consume(req.Context(), exp.Metrics())
	switch o.code {
	case codes.OK:
	case codes.Unavailable:
		w.Header().Set("Retry-After", strconv.Itoa(int(r.cfg.RetryAfter.Seconds())))
		writeStatus(w, respType, http.StatusServiceUnavailable, o.code, o.message)
		return
	case codes.InvalidArgument:
		writeStatus(w, respType, http.StatusBadRequest, o.code, o.message)
		return
	default:
		writeStatus(w, respType, http.StatusInternalServerError, o.code, o.message)
		return
	}
	resp := o.response()
	var b []byte
	var err error
	if respType == contentTypeProtobuf {
		b, err = resp.MarshalProto()
	} else {
		b, err = resp.MarshalJSON()
	}
	if err != nil {
		writeStatus(w, respType, http.StatusInternalServerError, codes.Internal, "encode response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", respType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// writeRefusal answers a request refused by authentication: 401 with a Bearer challenge
// (RFC 6750) or 403.
func writeRefusal(w http.ResponseWriter, respType string, o *outcome) {
	if o.code == codes.PermissionDenied {
		writeStatus(w, respType, http.StatusForbidden, o.code, o.message)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="fleetwatt"`)
	writeStatus(w, respType, http.StatusUnauthorized, o.code, o.message)
}

// readBody reads the request body, gunzipping it, and refuses more than limit bytes before
// or after decompression (a small gzip body can inflate to gigabytes).
func readBody(w http.ResponseWriter, req *http.Request, limit int64) ([]byte, error) {
	if req.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	var r io.Reader = http.MaxBytesReader(w, req.Body, limit)
	switch enc := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, readError(fmt.Errorf("read gzip body: %w", err), limit)
		}
		defer zr.Close()
		r = zr
	default:
		return nil, &requestError{
			http.StatusUnsupportedMediaType,
			fmt.Errorf("unsupported Content-Encoding %q: send gzip or none", enc),
		}
	}
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, readError(fmt.Errorf("read body: %w", err), limit)
	}
	if int64(len(body)) > limit {
		return nil, tooLarge(limit)
	}
	return body, nil
}

func readError(err error, limit int64) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return tooLarge(limit)
	}
	return &requestError{http.StatusBadRequest, err}
}

func tooLarge(limit int64) error {
	return &requestError{
		http.StatusRequestEntityTooLarge,
		fmt.Errorf("request body exceeds %d bytes: send smaller batches", limit),
	}
}

// decode decodes an OTLP/HTTP export request body of media type ct.
func decode(ct string, body []byte) (pmetricotlp.ExportRequest, error) {
	exp := pmetricotlp.NewExportRequest()
	switch ct {
	case contentTypeProtobuf:
		if err := exp.UnmarshalProto(body); err != nil {
			return exp, fmt.Errorf("decode protobuf export request: %w", err)
		}
	case contentTypeJSON:
		if err := exp.UnmarshalJSON(body); err != nil {
			return exp, fmt.Errorf("decode json export request: %w", err)
		}
	default:
		return exp, &requestError{
			http.StatusUnsupportedMediaType,
			fmt.Errorf("unsupported Content-Type %q: send %s or %s", ct, contentTypeProtobuf, contentTypeJSON),
		}
	}
	return exp, nil
}

// writeStatus answers with a google.rpc.Status body, encoded as respType.
func writeStatus(w http.ResponseWriter, respType string, httpStatus int, code codes.Code, msg string) {
	st := &spb.Status{Code: int32(code), Message: msg}
	var b []byte
	var err error
	if respType == contentTypeProtobuf {
		b, err = proto.Marshal(st)
	} else {
		b, err = protojson.Marshal(st)
	}
	if err != nil {
		http.Error(w, msg, httpStatus)
		return
	}
	w.Header().Set("Content-Type", respType)
	w.WriteHeader(httpStatus)
	_, _ = w.Write(b)
}
