package grafana

import "fmt"

// Self-metrics: the collector stores its /metrics every 30 s and agents send theirs once a
// minute, as OTLP through the generic mapping (docs/schema.md, "Any other OpenTelemetry
// metric"): one measurement per metric, its value in the field "value", labels as tags.
const (
	collectorPrefix = "fleetwatt_collector_"
	agentPrefix     = "fleetwatt_agent_"
	// selfReport is the collector's reporting period; a rate needs two reports per bucket
	// apart, so the rate panels' buckets are at least this long.
	selfReport = "30s"
)

// rate is a counter's increase per second per bucket, by the given tags.
func rate(metric, where string, by ...string) string {
	return fmt.Sprintf(`SELECT non_negative_derivative(max("value"), 1s) AS "per_s" FROM %s WHERE %s AND $timeFilter GROUP BY time($__interval), %s fill(none)`,
		id(metric), where, groupBy(by...))
}

// gauge is a gauge's highest value per bucket (or a counter's total since its process started).
func gauge(metric, where string, by ...string) string {
	return fmt.Sprintf(`SELECT max("value") AS "value" FROM %s WHERE %s AND $timeFilter GROUP BY time($__interval), %s fill(none)`,
		id(metric), where, groupBy(by...))
}

// CollectorHealth is the pipeline's own health: what the collectors received, wrote, retried
// and dropped, their write-ahead logs, and the agents' queues and spools.
func CollectorHealth() *Dashboard {
	b := newDashboard("fleetwatt-collector", "fleetwatt — Collector health",
		"The pipeline's own counters: OTLP data points received and written, retries, drops by reason, the write-ahead log, and the agents' queues and spools.",
		multiVar("collector", "Collector", showTagValues(collectorPrefix+"requests_total", "host", ""), "Collectors by host name"),
		multiVar("region", "Agent region", showTagValues(agentPrefix+"batches_sent_total", "region", ""), "Regions of the agents"),
		multiVar("agent", "Agent", showTagValues(agentPrefix+"batches_sent_total", "host", `"region" =~ /^${region}$/`), "Agents by host name"),
	)
	b.d.Tags = append(b.d.Tags, "operations")
	b.d.Refresh = "1m"
	b.d.Time = TimeRange{From: "now-6h", To: "now"}
	coll := `"host" =~ /^${collector}$/`
	agent := `"region" =~ /^${region}$/ AND "host" =~ /^${agent}$/`
	perHost := Check{Tags: []string{"host"}, Columns: []string{"per_s"}, Min: 0, Max: 1e9}
	byTag := func(tag string) Check {
		return Check{Tags: []string{"host", tag}, Columns: []string{"per_s"}, Min: 0, Max: 1e9}
	}
	ratePanel := func(title, desc, unit string, targets ...Target) Panel {
		p := timeseries(title, desc, unit, false, targets...)
		p.Interval = selfReport
		return p
	}

	b.row("Collectors")
	b.add(12, 8, ratePanel("Data points received and written",
		"OTLP data points the collectors received, and InfluxDB points they stored (durable in the write-ahead log when there is one), per second.",
		"cps",
		series("A", "received · $tag_host", rate(collectorPrefix+"data_points_received_total", coll, "host"), perHost),
		series("B", "written · $tag_host", rate(collectorPrefix+"points_written_total", coll, "host"), perHost)))
	b.add(12, 8, ratePanel("Export requests",
		"OTLP export requests consumed, and those answered \"try later\" because the collector was at its limit of requests in flight.",
		"reqps",
		series("A", "requests · $tag_host", rate(collectorPrefix+"requests_total", coll, "host"), perHost),
		series("B", "busy · $tag_host", rate(collectorPrefix+"busy_refusals_total", coll, "host"), perHost)))
	b.add(12, 8, ratePanel("Data points rejected, by reason",
		"Data points the conversion left out (the OTLP response's partial success says so to the sender), by reason: negative or "+
			"implausible power, time in the future or too old, over the cardinality limit. The series appear with the first rejection.",
		"cps", series("A", "$tag_reason · $tag_host", rate(collectorPrefix+"data_points_rejected_total", coll, "host", "reason"), byTag("reason"))))
	b.add(12, 8, ratePanel("Write failures and refusals",
		"InfluxDB writes that failed (retryable: the sender retries; permanent: refused), the points lost in permanently failed writes, "+
			"and export requests refused by authentication.",
		"cps",
		series("A", "write failures, $tag_kind · $tag_host", rate(collectorPrefix+"write_failures_total", coll, "host", "kind"), byTag("kind")),
		series("B", "points refused · $tag_host", rate(collectorPrefix+"points_refused_total", coll, "host"), perHost),
		series("C", "auth refusals, $tag_reason · $tag_host", rate(collectorPrefix+"auth_refusals_total", coll, "host", "reason"), byTag("reason"))))
	walBytes := Check{Tags: []string{"host"}, Columns: []string{"value"}, Min: 0, Max: 1e15}
	p := timeseries("Write-ahead log",
		"Bytes of the write-ahead log on disk, and the backlog not yet drained into InfluxDB (it grows while InfluxDB is down). Collectors without a log show nothing.",
		"bytes", false,
		series("A", "on disk · $tag_host", gauge(collectorPrefix+"wal_bytes", coll, "host"), walBytes),
		series("B", "backlog · $tag_host", gauge(collectorPrefix+"wal_pending_bytes", coll, "host"), walBytes))
	p.Interval = selfReport
	b.add(12, 8, p)
	b.add(12, 8, ratePanel("Write-ahead log drain: retries and drops",
		"Retried InfluxDB writes of the drainer (each followed by a backoff), points InfluxDB refused for good (in the dead-letter file), "+
			"and appends refused because the log was full (senders told to retry).",
		"cps",
		series("A", "retries · $tag_host", rate(collectorPrefix+"drain_retries_total", coll, "host"), perHost),
		series("B", "dead-lettered points · $tag_host", rate(collectorPrefix+"drain_dead_lettered_points_total", coll, "host"), perHost),
		series("C", "log full · $tag_host", rate(collectorPrefix+"wal_full_refusals_total", coll, "host"), perHost)))

	b.row("Agents")
	bytesCheck := Check{Tags: []string{"host"}, Columns: []string{"value"}, Min: 0, Max: 1e15}
	p = timeseries("Agent queue and spool",
		"Bytes waiting in each agent's memory queue and in its disk spool: both grow while the collector is unreachable.", "bytes", false,
		series("A", "queue · $tag_host", gauge(agentPrefix+"queue_bytes", agent, "host"), bytesCheck),
		series("B", "spool · $tag_host", gauge(agentPrefix+"spool_bytes", agent, "host"), bytesCheck))
	p.Interval = "1m"
	b.add(12, 8, p)
	total := func(tags ...string) Check {
		return Check{Tags: append([]string{"host"}, tags...), Columns: []string{"value"}, Min: 0, Max: 1e15}
	}
	p = timeseries("Agent batches since start",
		"Totals since each agent started (agents report once a minute): batches the collector accepted, export attempts that failed "+
			"(kept and retried), and batches dropped unsent, by queue.", "none", false,
		series("A", "sent · $tag_host", gauge(agentPrefix+"batches_sent_total", agent, "host"), total()),
		series("B", "failed · $tag_host", gauge(agentPrefix+"batches_failed_total", agent, "host"), total()),
		series("C", "dropped from $tag_queue · $tag_host", gauge(agentPrefix+"batches_dropped_total", agent, "host", "queue"), total("queue")))
	p.Interval = "1m"
	b.add(12, 8, p)
	last := table("Agents: last successful export",
		"When each agent's last export succeeded, as the agent itself reported it.",
		[]Override{renamed("last_export_ms", "Last export"), unitOf("last_export_ms", "dateTimeFromNow")}, nil,
		rows("A", fmt.Sprintf(`SELECT last("value") * 1000 AS "last_export_ms" FROM %s WHERE %s AND $timeFilter GROUP BY "host"`,
			id(agentPrefix+"last_export_timestamp_seconds"), agent),
			Check{Tags: []string{"host"}, Columns: []string{"last_export_ms"}, Min: 0, Max: 1e14}))
	b.add(24, 6, last)
	return b.build()
}
