package influx

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"
)

// Precision is the timestamp precision of the line protocol the Writer sends, and of the
// lines WriteLines is given.
const Precision = time.Millisecond

// Reasons AppendPoint refuses a point: InfluxDB could not store it.
var (
	ErrNoMeasurement = errors.New("point without a measurement")
	ErrNoFields      = errors.New("point without fields")
	ErrNotFinite     = errors.New("field value is NaN or infinite")
	ErrFieldKey      = errors.New("invalid field key")
)

// AppendPoint appends p as one line of line protocol, with its timestamp in ms and a final
// "\n", to dst. The bytes are those influxdb-client-go's WriteAPIBlocking.WritePoint sends
// (its line-protocol encoder, with unsigned integers): tag keys and values and field keys with
// ",", " ", "=", tab, newline, form feed and carriage return escaped, the measurement the
// same but for "=", string fields quoted, floats in the shortest decimal form without an
// exponent; tags with an empty key or value are left out. A point InfluxDB cannot store (no
// measurement, no field, a NaN or infinite float, an empty field key or one ending in a
// backslash, which would escape the "=" after it, a value of another type) is an error, and
// dst is returned unchanged. (The library's encoder means to refuse that backslash too, but
// its check looks at the wrong end of the key.)
//
// It is the Writer's encoder: the library's builds a line through three intermediate
// buffers and, wherever one character needs escaping, a new string; this one appends
// straight into a buffer the Writer reuses.
func AppendPoint(dst []byte, p *write.Point) ([]byte, error) {
	start := len(dst)
	if p.Name() == "" {
		return dst, ErrNoMeasurement
	}
	dst = appendEscaped(dst, p.Name(), nameEscapes)
	for _, t := range p.TagList() {
		if t.Key == "" || t.Value == "" {
			continue
		}
		dst = append(dst, ',')
		dst = appendEscaped(dst, t.Key, keyEscapes)
		dst = append(dst, '=')
		dst = appendEscaped(dst, t.Value, keyEscapes)
	}
	fields := p.FieldList()
	if len(fields) == 0 {
		return dst[:start], ErrNoFields
	}
	for i, f := range fields {
		if f.Key == "" || strings.HasSuffix(f.Key, `\`) {
			return dst[:start], fmt.Errorf("%w %q", ErrFieldKey, f.Key)
		}
		if i == 0 {
			dst = append(dst, ' ')
		} else {
			dst = append(dst, ',')
		}
		dst = appendEscaped(dst, f.Key, keyEscapes)
		dst = append(dst, '=')
		var err error
		if dst, err = appendValue(dst, f.Value); err != nil {
			return dst[:start], fmt.Errorf("field %s: %w", f.Key, err)
		}
	}
	if t := p.Time(); !t.IsZero() {
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, t.UnixNano()/int64(Precision), 10)
	}
	return append(dst, '\n'), nil
}

// appendValue appends a field value, of one of the types write.Point.AddField stores.
func appendValue(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return dst, ErrNotFinite
		}
		return strconv.AppendFloat(dst, v, 'f', -1, 64), nil
	case int64:
		return append(strconv.AppendInt(dst, v, 10), 'i'), nil
	case uint64:
		return append(strconv.AppendUint(dst, v, 10), 'u'), nil
	case bool:
		return strconv.AppendBool(dst, v), nil
	case string:
		dst = append(dst, '"')
		dst = appendEscaped(dst, v, stringEscapes)
		return append(dst, '"'), nil
	default:
		return dst, fmt.Errorf("invalid value type %T", v)
	}
}

// Characters escaped with a backslash: in the measurement; in tag keys, tag values and field
// keys; in string field values.
var (
	nameEscapes   = newEscapes("\t\n\f\r ,")
	keyEscapes    = newEscapes("\t\n\f\r ,=")
	stringEscapes = newEscapes("\t\n\f\r\\\"")
)

// escapes is a set of bytes, all ASCII: no byte of a multi-byte UTF-8 character is one.
type escapes [256]bool

func newEscapes(chars string) *escapes {
	var e escapes
	for i := range len(chars) {
		e[chars[i]] = true
	}
	return &e
}

// appendEscaped appends s with each byte of esc preceded by a backslash, and tab, newline,
// form feed and carriage return written as \t, \n, \f and \r.
func appendEscaped(dst []byte, s string, esc *escapes) []byte {
	i := 0
	for i < len(s) && !esc[s[i]] {
		i++
	}
	dst = append(dst, s[:i]...)
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case !esc[c]:
			dst = append(dst, c)
		case c == '\t':
			dst = append(dst, `\t`...)
		case c == '\n':
			dst = append(dst, `\n`...)
		case c == '\f':
			dst = append(dst, `\f`...)
		case c == '\r':
			dst = append(dst, `\r`...)
		default:
			dst = append(dst, '\\', c)
		}
	}
	return dst
}
