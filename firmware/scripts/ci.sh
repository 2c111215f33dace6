#!/usr/bin/env bash
# Firmware CI: host build with sanitizers and -Werror, ctest, kaiser-vdev build, and a short smoke
# test of 3 virtual devices against the broker in KAISER_MQTT_URL (skipped if unreachable).
# Assumes the Debian packages below are installed (.ci/run installs them).
FIRMWARE_APT_PACKAGES="build-essential cmake pkg-config libcmocka-dev libcjson-dev libmosquitto-dev mosquitto-clients"
set -euo pipefail

FW_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${KAISER_FW_BUILD_DIR:-$FW_DIR/build}"
URL="${KAISER_MQTT_URL:-mqtt://127.0.0.1:1883}"

echo "== firmware: configure + build (ASan/UBSan, -Wall -Wextra -Werror)"
cmake -S "$FW_DIR/host" -B "$BUILD" -DKAISER_SANITIZE=ON -DKAISER_WERROR=ON -DKAISER_BUILD_VDEV=ON >/dev/null
cmake --build "$BUILD" -j"$(nproc)"

echo "== firmware: ctest"
ctest --test-dir "$BUILD" --output-on-failure -j"$(nproc)"

echo "== firmware: kaiser-vdev smoke against $URL"
hostport="${URL#*://}"
host="${hostport%%:*}"
port="${hostport##*:}"
[ "$port" = "$hostport" ] && port=1883
if ! timeout 2 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
    echo "broker $host:$port not reachable: smoke test skipped"
    exit 0
fi
smoke="$(mktemp -d)"
trap 'rm -rf "$smoke"' EXIT
prefix="ESP_CI$$_"
# Count this run's heartbeats on the broker, independently of the vdev's own stats.
timeout 12 mosquitto_sub -h "$host" -p "$port" -t "kaiser/god/esp/+/system/heartbeat" -F '%t' > "$smoke/hb.txt" 2>/dev/null &
sub_pid=$!
# Stand-in for the server's registration route (answers heartbeats with a valid ACK).
"$BUILD/linux/kaiser-ackd" --url "$URL" --duration 16 2> "$smoke/ackd.txt" &
ackd_pid=$!
sleep 0.5
timeout 30 "$BUILD/linux/kaiser-vdev" --url "$URL" --count 3 --prefix "$prefix" --duration 8 --stats-s 4 \
    --heartbeat-s 5 --data-s 2 > "$smoke/stats.txt"
sleep 0.5
# Send one actuator command and expect the response on the broker.
timeout 6 mosquitto_sub -h "$host" -p "$port" -C 1 -W 5 -t "kaiser/god/esp/${prefix}0001/actuator/5/response" > "$smoke/resp.txt" 2>/dev/null &
resp_pid=$!
timeout 20 "$BUILD/linux/kaiser-vdev" --url "$URL" --count 1 --prefix "$prefix" --duration 4 --stats-s 4 > "$smoke/stats2.txt" &
vdev2_pid=$!
sleep 2
mosquitto_pub -h "$host" -p "$port" -q 2 -t "kaiser/god/esp/${prefix}0001/actuator/5/command" \
    -m '{"command":"ON","value":1.0,"duration":0,"issued_by":"ci","correlation_id":"c1c1c1c1-0000-4000-8000-000000000001","intent_id":"c1c1c1c1-0000-4000-8000-000000000001"}'
wait "$vdev2_pid" || true
wait "$resp_pid" || true
wait "$sub_pid" || true
wait "$ackd_pid" || true
# The vdevs leave with "disconnect with will": clear this run's retained wills from the broker.
for i in 0001 0002 0003; do
    mosquitto_pub -h "$host" -p "$port" -q 1 -r -n -t "kaiser/god/esp/${prefix}${i}/system/will" || true
done
cat "$smoke/stats.txt"
final="$(tail -n 1 "$smoke/stats.txt")"
hb_broker="$(grep -c "/${prefix}" "$smoke/hb.txt" || true)"
echo "heartbeats seen on the broker: $hb_broker"
echo "actuator response: $(cat "$smoke/resp.txt")"
fail=0
echo "$final" | grep -q '"connected":3' || { echo "FAIL: not all 3 devices connected"; fail=1; }
echo "$final" | grep -q '"registered":3' || { echo "FAIL: not all 3 devices registered"; fail=1; }
[ "${hb_broker:-0}" -ge 3 ] || { echo "FAIL: fewer than 3 heartbeats on the broker"; fail=1; }
grep -q '"correlation_id":"c1c1c1c1-0000-4000-8000-000000000001"' "$smoke/resp.txt" || { echo "FAIL: no actuator response"; fail=1; }
if [ "$fail" -ne 0 ]; then
    echo "vdev smoke: 0 passed, 1 failed"
    exit 1
fi
echo "vdev smoke: 1 passed, 0 failed"
