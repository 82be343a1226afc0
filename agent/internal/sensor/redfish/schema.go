package redfish

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// The Redfish resources the Reader reads, cut down to the properties it uses. Readings are
// pointers so that null (a BMC's "no reading": an absent PSU, a sensor not yet sampled)
// is told apart from 0.

type link struct {
	ID string `json:"@odata.id"`
}

type serviceRoot struct {
	Chassis *link `json:"Chassis"`
}

type collection struct {
	Members []link `json:"Members"`
}

type chassis struct {
	ID                 string `json:"Id"`
	Name               string `json:"Name"`
	PowerSubsystem     *link  `json:"PowerSubsystem"`
	EnvironmentMetrics *link  `json:"EnvironmentMetrics"`
	Power              *link  `json:"Power"`
}

type status struct {
	State string `json:"State"`
}

type powerSubsystem struct {
	PowerSupplies *link `json:"PowerSupplies"`
}

type powerSupply struct {
	ID     string `json:"Id"`
	Name   string `json:"Name"`
	Status status `json:"Status"`
	// PowerCapacityWatts is the supply's rated output, W.
	PowerCapacityWatts *float64 `json:"PowerCapacityWatts"`
	Metrics            *link    `json:"Metrics"`
}

// sensorExcerpt is Redfish's SensorPowerExcerpt: the reading of a Sensor, copied into the
// resource it measures.
type sensorExcerpt struct {
	Reading *float64 `json:"Reading"`
}

// energyExcerpt is SensorEnergykWhExcerpt. The numbers are kept as written so that the
// conversion to µJ loses nothing.
type energyExcerpt struct {
	Reading *json.Number `json:"Reading"`
	// LifetimeReading is not reset by the ResetMetrics action, unlike Reading.
	LifetimeReading *json.Number `json:"LifetimeReading"`
}

type powerSupplyMetrics struct {
	InputPowerWatts  *sensorExcerpt `json:"InputPowerWatts"`
	OutputPowerWatts *sensorExcerpt `json:"OutputPowerWatts"`
}

type environmentMetrics struct {
	PowerWatts *sensorExcerpt `json:"PowerWatts"`
	EnergykWh  *energyExcerpt `json:"EnergykWh"`
}

// power is the Power resource, deprecated since Redfish 2020.4 but the only one that
// older BMCs (iDRAC 8/9 before 6.x, iLO 4/5, older XCC and Supermicro firmware) have.
type power struct {
	PowerControl  []powerControl `json:"PowerControl"`
	PowerSupplies []legacySupply `json:"PowerSupplies"`
}

type powerControl struct {
	MemberID           string   `json:"MemberId"`
	Name               string   `json:"Name"`
	PowerConsumedWatts *float64 `json:"PowerConsumedWatts"`
	PowerMetrics       *struct {
		IntervalInMin        *float64 `json:"IntervalInMin"`
		AverageConsumedWatts *float64 `json:"AverageConsumedWatts"`
	} `json:"PowerMetrics"`
}

type legacySupply struct {
	MemberID           string   `json:"MemberId"`
	Name               string   `json:"Name"`
	Status             status   `json:"Status"`
	PowerInputWatts    *float64 `json:"PowerInputWatts"`
	PowerOutputWatts   *float64 `json:"PowerOutputWatts"`
	PowerCapacityWatts *float64 `json:"PowerCapacityWatts"`
}

// maxBody bounds a resource's size. The largest the Reader reads, a Power resource with
// voltages of every rail, is tens of KiB.
const maxBody = 4 << 20

// decode decodes one resource from r into v. Each resource type has its parse function
// below so that the fuzz test reaches every one.
func decode[T any](r io.Reader) (T, error) {
	var v T
	dec := json.NewDecoder(io.LimitReader(r, maxBody))
	if err := dec.Decode(&v); err != nil {
		return v, fmt.Errorf("decode JSON: %w", err)
	}
	return v, nil
}

func parseServiceRoot(r io.Reader) (serviceRoot, error) { return decode[serviceRoot](r) }
func parseCollection(r io.Reader) (collection, error)   { return decode[collection](r) }
func parseChassis(r io.Reader) (chassis, error)         { return decode[chassis](r) }
func parsePowerSubsystem(r io.Reader) (powerSubsystem, error) {
	return decode[powerSubsystem](r)
}
func parsePowerSupply(r io.Reader) (powerSupply, error) { return decode[powerSupply](r) }
func parsePowerSupplyMetrics(r io.Reader) (powerSupplyMetrics, error) {
	return decode[powerSupplyMetrics](r)
}

func parseEnvironmentMetrics(r io.Reader) (environmentMetrics, error) {
	return decode[environmentMetrics](r)
}
func parsePower(r io.Reader) (power, error) { return decode[power](r) }

// ujPerKWh is the number of µJ in a kWh: 1000 W × 3600 s × 10⁶ µJ/J.
const ujPerKWh = 3_600_000_000_000

var errEnergy = errors.New("energy reading out of range")

// kWhToUJ converts an energy reading written in kWh ("325675.125") to µJ, exactly: the
// decimal is multiplied as a rational number and rounded to the nearest µJ once, so a
// reading with many digits does not pick up float64 rounding.
func kWhToUJ(n json.Number) (uint64, error) {
	// Bound the work big.Rat does: "1e-999999999" is a valid JSON number.
	s := string(n)
	if len(s) > 40 {
		return 0, fmt.Errorf("energy %.40q... kWh: too many digits", s)
	}
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		if exp, err := strconv.Atoi(s[i+1:]); err != nil || exp < -30 || exp > 30 {
			return 0, fmt.Errorf("energy %q kWh: %w", n, errEnergy)
		}
	}
	kwh, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, fmt.Errorf("energy %q kWh: not a decimal number", n)
	}
	if kwh.Sign() < 0 {
		return 0, fmt.Errorf("energy %q kWh: %w", n, errEnergy)
	}
	uj := kwh.Mul(kwh, new(big.Rat).SetInt64(ujPerKWh))
	// Round half up: add ½ and truncate.
	q := new(big.Int).Quo(new(big.Int).Add(new(big.Int).Mul(uj.Num(), big.NewInt(2)), uj.Denom()),
		new(big.Int).Mul(uj.Denom(), big.NewInt(2)))
	if !q.IsUint64() {
		return 0, fmt.Errorf("energy %q kWh: %w", n, errEnergy)
	}
	return q.Uint64(), nil
}

// validWatts reports whether w is a power reading worth reporting: present, finite and
// above zero. BMCs report 0 (or null) for an absent or unplugged supply and for a sensor
// they have not sampled yet.
func validWatts(w *float64) bool {
	return w != nil && *w > 0 && !math.IsInf(*w, 0) && !math.IsNaN(*w)
}
