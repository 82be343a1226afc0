package ipmi

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// powerReading is one DCMI "Get Power Reading" response as the tools print it.
type powerReading struct {
	currentW float64 // instantaneous power, W
	minW     float64 // minimum over the statistics period, W
	maxW     float64 // maximum over the statistics period, W
	avgW     float64 // average over the statistics period, W
	// period is the statistics period the BMC reports for minW, maxW and avgW; 0 when
	// not printed.
	period time.Duration
	// active is DCMI's "power measurement active" bit.
	active bool
}

var (
	errNoReading = errors.New("no instantaneous power reading in the output")
	errNoState   = errors.New("no power measurement state in the output")
)

// maxLine bounds one line of the tools' output.
const maxLine = 4096

// parseIpmitool parses the output of "ipmitool dcmi power reading":
//
//	Instantaneous power reading:                   245 Watts
//	Minimum during sampling period:                 12 Watts
//	Maximum during sampling period:                703 Watts
//	Average power reading over sample period:      246 Watts
//	IPMI timestamp:                           Tue Jul 16 14:57:49 2024
//	Sampling period:                          00000001 Seconds.
//	Power reading state is:                   activated
//
// ipmitool 1.8.19 and later print the timestamp without a newline, so "Sampling period"
// follows it on the same line ("08/28/26 07:12:06 UTC    Sampling period: ...").
func parseIpmitool(r io.Reader) (powerReading, error) {
	var p powerReading
	var haveCurrent, haveState bool
	err := scanFields(r, func(key, value string) error {
		var err error
		switch key {
		case "instantaneous power reading":
			p.currentW, err = parseWatts(value)
			haveCurrent = err == nil
		case "minimum during sampling period":
			p.minW = optional(parseWatts(value))
		case "maximum during sampling period":
			p.maxW = optional(parseWatts(value))
		case "average power reading over sample period":
			p.avgW = optional(parseWatts(value))
		case "sampling period":
			p.period = optional(parsePeriod(value))
		case "power reading state is":
			switch strings.ToLower(value) {
			case "activated":
				p.active = true
			case "deactivated":
				p.active = false
			default:
				return fmt.Errorf("power reading state %q: want activated or deactivated", value)
			}
			haveState = true
		}
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		return nil
	})
	return p, check(p, err, haveCurrent, haveState)
}

// parseFreeipmi parses the output of "ipmi-dcmi --get-system-power-statistics":
//
//	Current Power                        : 245 Watts
//	Minimum Power over sampling duration : 68 watts
//	Maximum Power over sampling duration : 504 watts
//	Average Power over sampling duration : 248 watts
//	Time Stamp                           : 11/03/2023 - 08:36:29
//	Statistics reporting time period     : 1000 milliseconds
//	Power Measurement                    : Active
func parseFreeipmi(r io.Reader) (powerReading, error) {
	var p powerReading
	var haveCurrent, haveState bool
	err := scanFields(r, func(key, value string) error {
		var err error
		switch key {
		case "current power":
			p.currentW, err = parseWatts(value)
			haveCurrent = err == nil
		case "minimum power over sampling duration":
			p.minW = optional(parseWatts(value))
		case "maximum power over sampling duration":
			p.maxW = optional(parseWatts(value))
		case "average power over sampling duration":
			p.avgW = optional(parseWatts(value))
		case "statistics reporting time period":
			p.period = optional(parsePeriod(value))
		case "power measurement":
			switch strings.ToLower(value) {
			case "active":
				p.active = true
			case "not available":
				p.active = false
			default:
				return fmt.Errorf("power measurement %q: want Active or Not Available", value)
			}
			haveState = true
		}
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		return nil
	})
	return p, check(p, err, haveCurrent, haveState)
}

// optional drops the error of a field the Reader does not use: BMCs fill the statistics
// fields with odd values (0xFFFF watts, an unknown period unit) more often than the
// instantaneous reading, and that must not lose the reading.
func optional[T any](v T, err error) T {
	if err != nil {
		var zero T
		return zero
	}
	return v
}

func check(p powerReading, err error, haveCurrent, haveState bool) error {
	switch {
	case err != nil:
		return err
	case !haveCurrent:
		return errNoReading
	case !haveState:
		return errNoState
	}
	return nil
}

// scanFields calls field for every "key: value" pair in r, with the key lower-cased and
// both trimmed. Lines without a colon (blank lines, banners) are skipped.
func scanFields(r io.Reader, field func(key, value string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxLine)
	for sc.Scan() {
		line := sc.Text()
		// ipmitool ≥ 1.8.19 runs the timestamp and the sampling period together.
		if i := strings.Index(line, "Sampling period"); i > 0 {
			if err := splitField(line[:i], field); err != nil {
				return err
			}
			line = line[i:]
		}
		if err := splitField(line, field); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read output: %w", err)
	}
	return nil
}

func splitField(line string, field func(key, value string) error) error {
	key, value, ok := strings.Cut(line, ":")
	if !ok {
		return nil
	}
	key = strings.ToLower(strings.Join(strings.Fields(key), " "))
	return field(key, strings.TrimSpace(value))
}

// parseWatts parses "245 Watts" (any case). DCMI carries watts as a 16-bit integer.
func parseWatts(s string) (float64, error) {
	f := strings.Fields(s)
	if len(f) != 2 || !strings.EqualFold(f[1], "watts") {
		return 0, fmt.Errorf("%q: want <integer> Watts", s)
	}
	w, err := strconv.ParseUint(f[0], 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	return float64(w), nil
}

// parsePeriod parses a statistics period: ipmitool's "00000001 Seconds." (whole seconds,
// zero-padded) and FreeIPMI's "1000 milliseconds". DCMI carries it as 32-bit milliseconds.
func parsePeriod(s string) (time.Duration, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, fmt.Errorf("%q: want <integer> <unit>", s)
	}
	n, err := strconv.ParseUint(f[0], 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	switch strings.ToLower(strings.TrimSuffix(f[1], ".")) {
	case "seconds", "second":
		return time.Duration(n) * time.Second, nil
	case "milliseconds", "millisecond", "ms":
		return time.Duration(n) * time.Millisecond, nil
	}
	return 0, fmt.Errorf("%q: unknown unit", s)
}
