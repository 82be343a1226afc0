#!/usr/bin/env bash
# The README's run command (`make demo`): start InfluxDB, the collector and an agent for this
# host; backfill a week of the simulated six-region fleet; print the ARM-vs-x86 report and a
# capacity plan; then keep everything running live until Ctrl-C, with the collector's web page
# at http://127.0.0.1:8090/. Everything runs on loopback; data and logs go to .run/.
set -euo pipefail
cd "$(dirname "$0")/.."

arch=$(go env GOARCH)
bin=bin/linux-$arch
run=.run
influx_port=${FLEETWATT_DEMO_INFLUX_PORT:-8086}
influx_url=http://127.0.0.1:$influx_port
interval=${FLEETWATT_DEMO_INTERVAL:-5s}
backfill=${FLEETWATT_DEMO_BACKFILL:-168h}
mkdir -p "$run/influxdb" "$run/log"

pids=()
cleanup() {
  echo
  echo "stopping..."
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; wait "${pids[i]}" 2>/dev/null || true; done
  echo "stopped; data and logs are in $run/"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() { # url what
  for _ in $(seq 1 300); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "$2 did not come up; see $run/log/" >&2
  exit 1
}

if curl -fsS -o /dev/null "$influx_url/ping" 2>/dev/null; then
  echo "== something already answers on $influx_url: set FLEETWATT_DEMO_INFLUX_PORT to another port" >&2
  exit 1
fi

echo "== InfluxDB $influx_url (influxd 1.8.10, data in $run/influxdb)"
cat > "$run/influxdb/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$((influx_port + 2))"
[meta]
  dir = "$PWD/$run/influxdb/meta"
[data]
  dir = "$PWD/$run/influxdb/data"
  wal-dir = "$PWD/$run/influxdb/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:$influx_port"
  log-enabled = false
  flux-enabled = true
CONF
.tools/bin/influxd run -config "$run/influxdb/influxdb.conf" >"$run/log/influxd.log" 2>&1 &
pids+=($!)
wait_for "$influx_url/ping" "influxd"
curl -fsS -XPOST "$influx_url/query" --data-urlencode 'q=CREATE DATABASE fleetwatt' >/dev/null

echo "== fleetwatt-collector: OTLP on :4317 (gRPC) and :4318 (HTTP), web page and API on :8090, write-ahead log in $run/wal"
influx=(--influx-url "$influx_url" --influx-bucket fleetwatt/autogen)
"$bin/fleetwatt-collector" "${influx[@]}" \
  --otlp-grpc 127.0.0.1:4317 --otlp-http 127.0.0.1:4318 --listen 127.0.0.1:8090 --wal-dir "$run/wal" \
  >"$run/log/collector.log" 2>&1 &
pids+=($!)
wait_for http://127.0.0.1:8090/readyz "fleetwatt-collector"

echo "== fleetwatt-agent doctor: what this host offers"
"$bin/fleetwatt-agent" doctor
echo

echo "== fleetwatt-agent for this host, every $interval"
"$bin/fleetwatt-agent" --endpoint http://127.0.0.1:4317 --interval "$interval" \
  --region "${FLEETWATT_REGION:-local}" >"$run/log/agent.log" 2>&1 &
pids+=($!)

echo
echo "== the simulated fleet: a backfill of the last $backfill (six regions, an ARM and an x86 pool each)"
"$bin/fleetwatt-agent" simulate --backfill "$backfill" --endpoint http://127.0.0.1:4317 --concurrency 32
# The collector acknowledged everything once it was in its write-ahead log; wait until the
# log has drained into InfluxDB (the count of power points stops growing).
count() {
  curl -fsS "$influx_url/query" --data-urlencode db=fleetwatt \
    --data-urlencode "q=SELECT count(energy_j) FROM power WHERE time > now() - $backfill - 1h" |
    sed -n 's/.*"values":\[\[[^,]*,\([0-9]*\)\]\].*/\1/p'
}
last=-1
while n=$(count); [ "$n" != "$last" ]; do last=$n; sleep 2; done
echo "   $last power points in InfluxDB"
echo
echo "== hourly rollups of the range"
"$bin/fleetwatt-collector" rollup "${influx[@]}" --since "$backfill"
echo
echo "== the efficiency report (fleetwatt-collector report --since $backfill)"
"$bin/fleetwatt-collector" report "${influx[@]}" --since "$backfill"
echo
echo "== a capacity plan: half of Hangzhou's x86 load onto its ARM pool at 60% utilization"
"$bin/fleetwatt-collector" plan "${influx[@]}" --since "$backfill" \
  --region cn-hangzhou --from amd64 --to arm64 --share 0.5 --target-util 0.6
echo
echo "== what this host's agent sent (fleetwatt-collector status)"
"$bin/fleetwatt-collector" status "${influx[@]}" --since 5m | grep -v -- '-amd64-\|-arm64-' || true

echo
echo "== the fleet goes on live"
"$bin/fleetwatt-agent" simulate --endpoint http://127.0.0.1:4317 >"$run/log/simulate.log" 2>&1 &
pids+=($!)
cat <<TXT

Running:
  InfluxDB          $influx_url (database fleetwatt; InfluxQL at /query)
  collector         OTLP 127.0.0.1:4317 (gRPC), 127.0.0.1:4318 (HTTP); health http://127.0.0.1:8090/readyz
  report (JSON)     http://127.0.0.1:8090/api/v1/report?since=$backfill
  plan (JSON)       http://127.0.0.1:8090/api/v1/plan?region=cn-hangzhou&from=amd64&to=arm64&since=$backfill
  hosts (JSON)      http://127.0.0.1:8090/api/v1/hosts?since=10m
  logs              $run/log/

==================================================================================
  The web page:  http://127.0.0.1:8090/
  the fleet, ARM vs x86 per region, power curves, cost and carbon, each host's
  freshness and chart, and the capacity plan as a form
==================================================================================

Ctrl-C stops everything.
TXT
wait
