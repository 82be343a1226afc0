package export

import (
	"runtime"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/fleetwatt/fleetwatt/agent/internal/identity"
	"github.com/fleetwatt/fleetwatt/internal/semconv"
)

// ServiceName is the service.name of everything the agent sends, the simulator's virtual
// hosts included.
const ServiceName = "fleetwatt-agent"

// Place says where a host is; empty fields are left out of the resource.
type Place struct {
	Region     string // cloud.region
	Zone       string // cloud.availability_zone
	Datacenter string // fleetwatt.datacenter
}

// NewResource describes a host with OpenTelemetry resource attributes: its identity, the
// agent that reports it (service.name, service.version, its collection interval) and its
// place. The live agent and the simulator build their resources here, so a virtual host
// looks to the collector exactly like a real one.
func NewResource(host identity.Host, place Place, version string, interval time.Duration) *resource.Resource {
	attrs := append(host.Attributes(),
		attribute.String(semconv.AttrServiceName, ServiceName),
		attribute.String(semconv.AttrServiceVersion, version),
		attribute.String(semconv.AttrOSType, runtime.GOOS),
		attribute.Float64(semconv.AttrAgentInterval, interval.Seconds()),
	)
	for _, kv := range []struct{ key, value string }{
		{semconv.AttrCloudRegion, place.Region},
		{semconv.AttrCloudZone, place.Zone},
		{semconv.AttrDatacenter, place.Datacenter},
	} {
		if kv.value != "" {
			attrs = append(attrs, attribute.String(kv.key, kv.value))
		}
	}
	return resource.NewWithAttributes(semconv.SchemaURL, attrs...)
}
